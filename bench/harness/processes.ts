/**
 * Child processes of the bench. Each runs detached in its own process group,
 * so that stopping it also stops what it started (npx -> wrangler -> workerd).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** Grace period between SIGTERM and SIGKILL, in milliseconds. */
const STOP_GRACE_MS = 5_000;

const READY_POLL_MS = 200;

export interface SpawnOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** File that receives the child's stdout and stderr. */
  readonly logFile: string;
}

/** A running child and its process group. */
export interface ChildGroup {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Stops the group: SIGTERM, then SIGKILL after a grace period. Safe to call more than once. */
  stop(): Promise<void>;
}

export function spawnGroup(name: string, command: string, args: readonly string[], options: SpawnOptions): ChildGroup {
  const log = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', log, log],
      detached: true,
    });
  } finally {
    closeSync(log);
  }
  if (child.pid === undefined) {
    throw new Error(`Starting ${name} (${command}) failed: no process id; see ${options.logFile}.`);
  }

  const pid = child.pid;
  let stopped: Promise<void> | undefined;
  return {
    name,
    pid,
    child,
    stop() {
      stopped ??= stopGroup(child, pid);
      return stopped;
    },
  };
}

async function stopGroup(child: ChildProcess, pid: number): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    signalGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
  // Grandchildren such as workerd may outlive the group leader for a moment.
  signalGroup(pid, 'SIGKILL');
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group has already exited.
  }
}

/** Polls `url` until it responds with 2xx, and fails when the child exits or the time runs out. */
export async function waitForHttp(url: string, group: ChildGroup, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (group.child.exitCode !== null) {
      throw new Error(`${group.name} exited with code ${group.child.exitCode} before serving ${url}; see ${logFile}.`);
    }
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.ok) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  throw new Error(`${group.name} did not serve ${url} within ${timeoutMs / 1000} s; see ${logFile}.`);
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command to completion in its own process group, and kills the group
 * when it runs longer than `timeoutMs`. Rejects on a non-zero exit.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; inheritOutput?: boolean },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', options.inheritOutput === true ? 'inherit' : 'pipe', options.inheritOutput === true ? 'inherit' : 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        signalGroup(child.pid, 'SIGKILL');
      }
    }, options.timeoutMs);

    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const commandLine = [command, ...args].join(' ');
      if (timedOut) {
        reject(new Error(`${commandLine} timed out after ${options.timeoutMs / 1000} s.`));
      } else if (code !== 0) {
        const output = `${stdout}\n${stderr}`.trim().split('\n').slice(-20).join('\n');
        reject(new Error(`${commandLine} failed with ${code === null ? `signal ${signal}` : `exit code ${code}`}:\n${output}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}
