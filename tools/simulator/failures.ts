// Failure injection: rules that make the next N matching API or token
// requests fail with a chosen status, respond late, or both.

import type { ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';

import { sendApiError, sendText } from './http';
import type { SimulatorState } from './state';
import { type FailureRule, type FailureRuleInput, SimulatorError } from './types';

const RATE_LIMIT_MESSAGE = 'Rate limit for this resource has been exceeded';
const MAX_FAILURE_COUNT = 10_000;
const MAX_DELAY_MS = 10 * 60 * 1000;

const STATUS_MESSAGES: Readonly<Record<number, string>> = {
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function isIntegerInRange(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** Validates a rule from a caller or a control request; throws SimulatorError (400) naming the invalid field. */
export function createFailureRule(input: FailureRuleInput): FailureRule {
  const invalid = (message: string): never => {
    throw new SimulatorError(400, message);
  };
  if (typeof input !== 'object' || input === null) {
    invalid('a failure rule must be a JSON object');
  }
  const path = input.path ?? '/**';
  if (typeof path !== 'string' || !path.startsWith('/')) {
    invalid(`path must be a glob starting with "/", got ${JSON.stringify(input.path)}`);
  }
  if (input.status !== undefined && !isIntegerInRange(input.status, 400, 599)) {
    invalid(`status must be an integer from 400 to 599, got ${JSON.stringify(input.status)}`);
  }
  const count = input.count ?? 1;
  if (!isIntegerInRange(count, 1, MAX_FAILURE_COUNT)) {
    invalid(`count must be an integer from 1 to ${MAX_FAILURE_COUNT}, got ${JSON.stringify(input.count)}`);
  }
  if (input.retryAfterSeconds !== undefined && !isIntegerInRange(input.retryAfterSeconds, 0, 86_400)) {
    invalid(`retryAfterSeconds must be an integer from 0 to 86400, got ${JSON.stringify(input.retryAfterSeconds)}`);
  }
  if (input.body !== undefined && typeof input.body !== 'string') {
    invalid('body must be a string');
  }
  if (input.delayMs !== undefined && !isIntegerInRange(input.delayMs, 0, MAX_DELAY_MS)) {
    invalid(`delayMs must be an integer from 0 to ${MAX_DELAY_MS}, got ${JSON.stringify(input.delayMs)}`);
  }
  if (input.status === undefined && input.delayMs === undefined) {
    invalid('give a status, a delayMs or both');
  }
  return {
    path,
    count,
    status: input.status ?? null,
    retryAfterSeconds: input.retryAfterSeconds ?? null,
    body: input.body ?? null,
    delayMs: input.delayMs ?? 0,
    remaining: count,
  };
}

/** Converts a path glob to a regular expression: `**` matches across segments, `*` within one. */
export function globToRegExp(glob: string): RegExp {
  let pattern = '';
  for (let index = 0; index < glob.length; index += 1) {
    const character = glob.charAt(index);
    if (character === '*' && glob.charAt(index + 1) === '*') {
      pattern += '.*';
      index += 1;
    } else if (character === '*') {
      pattern += '[^/]*';
    } else {
      pattern += character.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${pattern}$`);
}

/** Takes one use of the first rule that matches the path, or returns undefined. */
export function takeFailureRule(state: SimulatorState, path: string): FailureRule | undefined {
  const index = state.failureRules.findIndex((rule) => globToRegExp(rule.path).test(path));
  if (index === -1) {
    return undefined;
  }
  const rule = state.failureRules[index] as FailureRule;
  rule.remaining -= 1;
  if (rule.remaining === 0) {
    state.failureRules.splice(index, 1);
  }
  return rule;
}

function sendInjectedFailure(response: ServerResponse, rule: FailureRule, status: number): void {
  const headers: Record<string, string> = {};
  if (rule.retryAfterSeconds !== null) {
    headers['Retry-After'] = String(rule.retryAfterSeconds);
  }
  if (rule.body !== null) {
    const isJson = /^\s*[{[]/.test(rule.body);
    sendText(response, status, rule.body, isJson ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8', headers);
    return;
  }
  if (status === 429) {
    sendText(response, status, RATE_LIMIT_MESSAGE, 'text/plain; charset=utf-8', headers);
    return;
  }
  for (const [name, value] of Object.entries(headers)) {
    response.setHeader(name, value);
  }
  sendApiError(response, status, STATUS_MESSAGES[status] ?? `Injected failure with HTTP ${status}`);
}

/** Result of applying the failure rules to a request. */
export type FailureOutcome =
  | { kind: 'none' }
  | { kind: 'answered'; status: number }
  | { kind: 'aborted' };

/**
 * Applies the first matching rule: waits its delay, then responds with its
 * status. Returns `none` when the request should be handled normally, also
 * after a delay-only rule. A delay ends early when the simulator closes; the
 * request then gets no response and the outcome is `aborted`.
 */
export async function applyFailureRule(
  state: SimulatorState,
  path: string,
  response: ServerResponse,
  closing: AbortSignal,
): Promise<FailureOutcome> {
  const rule = takeFailureRule(state, path);
  if (rule === undefined) {
    return { kind: 'none' };
  }
  if (rule.delayMs > 0) {
    try {
      await delay(rule.delayMs, undefined, { signal: closing });
    } catch {
      response.destroy();
      return { kind: 'aborted' };
    }
  }
  if (rule.status === null) {
    return { kind: 'none' };
  }
  sendInjectedFailure(response, rule, rule.status);
  return { kind: 'answered', status: rule.status };
}
