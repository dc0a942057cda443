// Password hashing on a pool of worker threads, one per core, each fed its next job before it
// finishes the current one.
//
// Why not libuv's pool (the async `hash()` of @node-rs/argon2) behind a limit of one hash per core,
// as before: every hash then ended with its thread going to sleep until the main thread, woken by
// the result, handed the next job to the pool. On two cores the scheduler often woke that next
// thread on the core still running the other hash, and the second core sat idle: 12-15 % of the
// machine while hashing eight passwords at a time, against 0.2-0.8 % here, where a thread that
// finishes a hash finds the next one already waiting in its port (docs/performance.md, seventh
// session; decision 018). piscina does the same with `concurrentTasksPerWorker: 2` but cost the
// main thread 0.27-0.33 ms a hash against 0.17-0.18 ms for this pool, and the main thread is
// what a sign-up server has least of.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Jobs a thread holds at once: the one it is hashing and the next, waiting in its port. */
const JOBS_PER_THREAD = 2;

export type HashJob =
  | { op: 'hash'; password: string; options: object }
  | { op: 'verify'; hash: string; password: string };

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string };

interface Waiting {
  id: number;
  job: HashJob;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  jobs: Map<number, Waiting>;
}

export interface HashPoolStats {
  /** Threads started (at most `size`; they start on first use). */
  threads: number;
  /** Jobs handed to a thread: at most one hashing and one waiting per thread. */
  inThreads: number;
  /** Jobs waiting in the main thread for room in a thread. */
  queued: number;
}

export class HashPool {
  private threadsWanted: number;
  private readonly workerUrl: URL;
  private readonly threads: Thread[] = [];
  private readonly queue: Waiting[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: { size?: number; workerUrl?: URL } = {}) {
    this.threadsWanted = Math.max(1, options.size ?? availableParallelism());
    this.workerUrl = options.workerUrl ?? new URL('./hash-worker.mjs', import.meta.url);
  }

  /** How many threads the pool runs at most. */
  get size(): number {
    return this.threadsWanted;
  }

  /**
   * Sets how many threads the pool runs at most (PASSWORD_HASH_THREADS). New threads start as work
   * needs them; threads past the new size take no new jobs and stop once their own are done.
   */
  resize(size: number): void {
    this.threadsWanted = Math.max(1, Math.floor(size));
    for (const thread of this.threads.slice(this.threadsWanted)) {
      if (thread.jobs.size === 0) this.retire(thread);
    }
    this.dispatch();
  }

  run(job: HashJob): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the hash pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, resolve, reject });
      this.dispatch();
    });
  }

  stats(): HashPoolStats {
    let inThreads = 0;
    for (const thread of this.threads) inThreads += thread.jobs.size;
    return { threads: this.threads.length, inThreads, queued: this.queue.length };
  }

  /** Stops every thread; jobs not yet answered are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const refused = new Error('the hash pool is closed');
    for (const waiting of this.queue.splice(0)) waiting.reject(refused);
    const threads = this.threads.splice(0);
    for (const thread of threads) {
      for (const waiting of thread.jobs.values()) waiting.reject(refused);
      thread.jobs.clear();
    }
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  /** Hands queued jobs to the least busy threads that have room, starting threads as needed. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let thread: Thread | null;
      try {
        thread = this.roomiest();
      } catch (error) {
        // A thread that cannot even be created (no memory, a limit on threads): this job fails
        // rather than wait for a thread that may never come; the next one tries again.
        (this.queue.shift() as Waiting).reject(
          error instanceof Error ? error : new Error(String(error)),
        );
        continue;
      }
      if (!thread) return;
      const waiting = this.queue.shift() as Waiting;
      if (thread.jobs.size === 0) thread.worker.ref();
      thread.jobs.set(waiting.id, waiting);
      thread.worker.postMessage({ id: waiting.id, ...waiting.job });
    }
  }

  private roomiest(): Thread | null {
    let best: Thread | null = null;
    // Threads past the size (after a resize down) are only finishing the jobs they hold.
    const usable = Math.min(this.threads.length, this.threadsWanted);
    for (let i = 0; i < usable; i++) {
      const thread = this.threads[i] as Thread;
      if (!best || thread.jobs.size < best.jobs.size) best = thread;
    }
    if ((!best || best.jobs.size > 0) && this.threads.length < this.threadsWanted) {
      return this.start();
    }
    return best && best.jobs.size < JOBS_PER_THREAD ? best : null;
  }

  private retire(thread: Thread): void {
    const at = this.threads.indexOf(thread);
    if (at === -1) return;
    this.threads.splice(at, 1);
    void thread.worker.terminate();
  }

  private start(): Thread {
    const worker = new Worker(this.workerUrl);
    const thread: Thread = { worker, jobs: new Map() };
    // An idle thread does not keep the process alive; one with work does (see dispatch).
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiting = thread.jobs.get(reply.id);
      if (!waiting) return;
      thread.jobs.delete(reply.id);
      if (thread.jobs.size === 0) {
        worker.unref();
        if (this.threads.indexOf(thread) >= this.threadsWanted) this.retire(thread);
      }
      if (reply.ok) waiting.resolve(reply.value);
      else waiting.reject(new Error(reply.message));
      this.dispatch();
    });
    // A thread that dies (out of memory, a crash in the native module) fails its own jobs only;
    // the next job starts a new thread in its place.
    const lost = (error: Error) => {
      const at = this.threads.indexOf(thread);
      if (at === -1) return;
      this.threads.splice(at, 1);
      for (const waiting of thread.jobs.values()) waiting.reject(error);
      thread.jobs.clear();
      if (!this.closed) this.dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`a hash thread stopped (exit code ${code})`)));
    this.threads.push(thread);
    return thread;
  }
}
