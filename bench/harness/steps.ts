/**
 * Cost of each verification step inside workerd, timed from outside: the
 * step route runs a step `n` times in one request, the harness times that
 * request, and subtracts the time of the `empty` step with the same `n`.
 * Requests alternate between the step and `empty`, and medians are used.
 */
import { performance } from 'node:perf_hooks';
import { STEP_NAMES, STEP_PATH, type StepName } from '../worker/constants';
import { median } from './throughput';

export interface StepPlan {
  readonly iterations: number;
  readonly repeats: number;
}

export interface StepCost {
  readonly name: StepName;
  /** Median time of one request running the step `iterations` times, in milliseconds. */
  readonly requestMs: number;
  /** Median time of one `empty` request with the same `iterations`, in milliseconds. */
  readonly emptyMs: number;
  /** (requestMs - emptyMs) / iterations, in microseconds. */
  readonly microsecondsPerStep: number;
}

export async function measureSteps(appUrl: string, clientKey: string, plan: StepPlan): Promise<StepCost[]> {
  const time = (name: StepName, iterations: number) => timeStepRequest(appUrl, clientKey, name, iterations);

  // One short request per step first, so that no step pays for first-use work.
  for (const name of STEP_NAMES) {
    await time(name, 10);
  }

  const costs: StepCost[] = [];
  for (const name of STEP_NAMES) {
    if (name === 'empty') {
      continue;
    }
    const stepTimes: number[] = [];
    const emptyTimes: number[] = [];
    for (let repeat = 0; repeat < plan.repeats; repeat += 1) {
      emptyTimes.push(await time('empty', plan.iterations));
      stepTimes.push(await time(name, plan.iterations));
    }
    const requestMs = median(stepTimes);
    const emptyMs = median(emptyTimes);
    costs.push({ name, requestMs, emptyMs, microsecondsPerStep: ((requestMs - emptyMs) * 1000) / plan.iterations });
  }
  return costs;
}

async function timeStepRequest(appUrl: string, clientKey: string, name: StepName, iterations: number): Promise<number> {
  const url = `${appUrl}${STEP_PATH}?name=${name}&n=${iterations}&clientKey=${encodeURIComponent(clientKey)}`;
  const started = performance.now();
  const response = await fetch(url);
  const body = await response.text();
  const elapsed = performance.now() - started;
  if (!response.ok) {
    throw new Error(`Step ${name} failed with HTTP ${response.status}: ${body.slice(0, 300)}`);
  }
  return elapsed;
}
