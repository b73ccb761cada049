import { startWorkers } from './start';

startWorkers(['ml']);
