import { startWorkers } from './start';

startWorkers(['features']);
