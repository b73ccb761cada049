export { pingQueues } from './ping';
export { smoke } from './smoke';
