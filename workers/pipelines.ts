import { startWorkers } from './start';

startWorkers(['pipelines']);
