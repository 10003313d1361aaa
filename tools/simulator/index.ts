// Public entry point of the local Bitbucket Cloud simulator.

export { startSimulator, TOKEN_ENDPOINT_PATH } from './server';
export { DEMO_COMMIT_COUNT, DEMO_PULL_REQUEST_COUNT, DEMO_REPOSITORY_SLUG, WORKSPACE_SLUG } from './seed';
export type { SeedData } from './seed';
export { SimulatorError } from './types';
export type {
  DescriptorProblem,
  DescriptorReport,
  FailureRule,
  FailureRuleInput,
  IframeUrlOptions,
  InstallKind,
  InstallResult,
  Simulator,
  SimulatorOptions,
  SimulatorStats,
  UninstallResult,
  WebhookDelivery,
  WebhookResult,
} from './types';
