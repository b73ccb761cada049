import { QUEUE_NAMES } from '../src/config';
import { startWorkers } from './start';

startWorkers([...QUEUE_NAMES]);
