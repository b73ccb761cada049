export { pingQueues } from './ping';
export { smoke } from './smoke';
export { trainModel } from './train-model';
export { digitalDataEtl } from './digital-data-etl';
export { featureEngineering } from './feature-engineering';
export { generateDatasets } from './generate-datasets';
// @workflows (one export line per workflow)
export { endToEnd } from './end-to-end';
export { continuousTraining } from './continuous-training';
export { deployModel, rollbackDeployment } from './deploy-model';
export { evaluateModel } from './evaluate-model';
