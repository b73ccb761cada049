/**
 * Per-host politeness: at most `perHostConcurrency` requests in flight to one host, and at least `minDelayMs`
 * between the starts of two requests to it (raised by a robots.txt Crawl-delay, capped). One scheduler is shared
 * by every crawl in a worker process, so parallel activities against the same site still queue politely.
 */
export interface PolitenessOptions {
  /** requests in flight per host (default 2) */
  perHostConcurrency?: number;
  /** minimum gap between request starts to one host, ms (default 500) */
  minDelayMs?: number;
  /** upper bound for a robots.txt Crawl-delay, ms (default 10 000) */
  maxCrawlDelayMs?: number;
}

interface HostState {
  active: number;
  queue: (() => void)[];
  nextStart: number;
  delayMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class HostScheduler {
  readonly perHostConcurrency: number;
  readonly minDelayMs: number;
  readonly maxCrawlDelayMs: number;
  private readonly hosts = new Map<string, HostState>();

  constructor(options: PolitenessOptions = {}) {
    this.perHostConcurrency = Math.max(1, options.perHostConcurrency ?? 2);
    this.minDelayMs = Math.max(0, options.minDelayMs ?? 500);
    this.maxCrawlDelayMs = options.maxCrawlDelayMs ?? 10_000;
  }

  /** A scheduler that never waits (politeness off). */
  static unlimited(): HostScheduler {
    return new HostScheduler({ perHostConcurrency: Number.MAX_SAFE_INTEGER, minDelayMs: 0 });
  }

  /** Applies a robots.txt Crawl-delay (seconds) to a host. */
  setCrawlDelay(host: string, seconds: number | undefined): void {
    if (seconds === undefined || !Number.isFinite(seconds) || seconds <= 0) return;
    const state = this.state(host);
    state.delayMs = Math.max(this.minDelayMs, Math.min(this.maxCrawlDelayMs, seconds * 1000));
  }

  async run<T>(host: string, task: () => Promise<T>): Promise<T> {
    await this.acquire(host);
    try {
      return await task();
    } finally {
      this.release(host);
    }
  }

  /** Hosts with requests running or waiting (for tests and metrics). */
  pending(host: string): { active: number; queued: number } {
    const s = this.hosts.get(host);
    return { active: s?.active ?? 0, queued: s?.queue.length ?? 0 };
  }

  private state(host: string): HostState {
    let s = this.hosts.get(host);
    if (!s) {
      if (this.hosts.size > 10_000) this.sweep();
      s = { active: 0, queue: [], nextStart: 0, delayMs: this.minDelayMs };
      this.hosts.set(host, s);
    }
    return s;
  }

  private async acquire(host: string): Promise<void> {
    const s = this.state(host);
    if (s.active >= this.perHostConcurrency) await new Promise<void>((resolve) => s.queue.push(resolve));
    else s.active++;
    if (s.delayMs > 0) {
      const now = Date.now();
      const wait = s.nextStart - now;
      s.nextStart = Math.max(now, s.nextStart) + s.delayMs;
      if (wait > 0) await sleep(wait);
    }
  }

  private release(host: string): void {
    const s = this.hosts.get(host);
    if (!s) return;
    const next = s.queue.shift();
    if (next)
      next(); // hand the slot over; `active` stays the same
    else s.active--;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [host, s] of this.hosts)
      if (s.active === 0 && s.queue.length === 0 && s.nextStart < now) this.hosts.delete(host);
  }
}
