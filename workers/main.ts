import { startWorkers } from './start';

// The container entry point: the queues come from TWIN_WORKER_QUEUES (default: all).
startWorkers();
