import { startWorkers } from './start';

startWorkers(['etl']);
