import { startWorkers } from './start';

startWorkers(['llm']);
