// Prometheus metrics. Each runtime has its own registry (tests run several in one process), and
// the outbox gauges are read from the database at scrape time, so every instance reports the
// same queue whichever process sends it.
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type LabelValues,
  Registry,
} from 'prom-client';
import type { OutboxOverview } from './mail/outbox-admin.ts';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export type SendResult = 'sent' | 'retried' | 'dead';
export type FunnelEvent =
  | 'signup'
  | 'verification_queued_signup'
  | 'verification_queued_contact'
  | 'address_verified'
  | 'contact_submitted'
  | 'contact_accepted';

/** What the scrape reads from the database. */
export interface OutboxSnapshot extends OutboxOverview {
  workersLive: number;
}

export interface Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** `route` is the route's pattern (`/verify/:token`), never the URL: URLs carry tokens. */
  observeRequest(method: string, route: string | undefined, status: number, seconds: number): void;
  countSend(result: SendResult, kind: string): void;
  countFunnel(event: FunnelEvent): void;
  /** The exposition text, with the outbox read fresh from `snapshot` (or marked down if it fails). */
  render(): Promise<string>;
}

export function createMetrics(options: {
  snapshot(): Promise<OutboxSnapshot>;
  onSnapshotError?(error: unknown): void;
  /** Node's process metrics (CPU, memory, event loop lag, GC); off for throwaway test runtimes. */
  processMetrics?: boolean;
}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  const httpDuration = new Histogram({
    name: 'mailproof_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const seriesByKey = new Map<string, { observe(value: number): void }>();
  const sends = new Counter({
    name: 'mailproof_outbox_sends_total',
    help: 'Outbox delivery attempts by outcome (sent, retried later, dead-lettered) and kind (email, webhook)',
    labelNames: ['result', 'kind'] as const,
    registers,
  });
  const signups = new Counter({
    name: 'mailproof_signups_total',
    help: 'Sign-ups accepted for processing (valid input; new or existing address alike)',
    registers,
  });
  const verificationsQueued = new Counter({
    name: 'mailproof_verification_emails_queued_total',
    help: 'Verification emails (link and code) written to the outbox, by purpose',
    labelNames: ['purpose'] as const,
    registers,
  });
  const verified = new Counter({
    name: 'mailproof_addresses_verified_total',
    help: 'Sign-up addresses confirmed by link or code (first confirmation only)',
    registers,
  });
  const contacts = new Counter({
    name: 'mailproof_contact_messages_total',
    help: 'Contact messages by stage: submitted (pending confirmation), accepted (sender confirmed)',
    labelNames: ['stage'] as const,
    registers,
  });
  const outboxMessages = new Gauge({
    name: 'mailproof_outbox_messages',
    help: 'Outbox rows by status, read from the database at scrape time',
    labelNames: ['status'] as const,
    registers,
  });
  const oldestPending = new Gauge({
    name: 'mailproof_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest message waiting to be sent (0 when none waits)',
    registers,
  });
  const workersLive = new Gauge({
    name: 'mailproof_outbox_workers_live',
    help: 'Outbox workers with a heartbeat in the last 30 seconds, in any process',
    registers,
  });
  const databaseUp = new Gauge({
    name: 'mailproof_database_up',
    help: '1 when the scrape could read the database, else 0 (the outbox gauges are then absent)',
    registers,
  });

  // Every series exists from the start, so rate() and alerts see a 0 rather than no data.
  for (const result of ['sent', 'retried', 'dead'] as const) {
    for (const kind of ['email', 'webhook']) sends.inc({ result, kind }, 0);
  }
  for (const purpose of ['signup', 'contact']) verificationsQueued.inc({ purpose }, 0);
  for (const stage of ['submitted', 'accepted']) contacts.inc({ stage }, 0);

  const funnel: Record<FunnelEvent, () => void> = {
    signup: () => signups.inc(),
    verification_queued_signup: () => verificationsQueued.inc({ purpose: 'signup' }),
    verification_queued_contact: () => verificationsQueued.inc({ purpose: 'contact' }),
    address_verified: () => verified.inc(),
    contact_submitted: () => contacts.inc({ stage: 'submitted' }),
    contact_accepted: () => contacts.inc({ stage: 'accepted' }),
  };

  return {
    registry,
    contentType: registry.contentType,
    observeRequest(method, route, status, seconds) {
      // One child per series, looked up by a string key: prom-client would otherwise hash the
      // label object on every request. The series are bounded (methods, route patterns, codes).
      const knownMethod = KNOWN_METHODS.has(method) ? method : 'other';
      const key = `${knownMethod} ${status} ${route ?? ''}`;
      let series = seriesByKey.get(key);
      if (!series) {
        const labels: LabelValues<'method' | 'route' | 'status'> = {
          method: knownMethod,
          // Unmatched URLs share one label: a scanner's paths must not grow the series count.
          route: route ?? '(unmatched)',
          status: String(status),
        };
        series = httpDuration.labels(labels);
        seriesByKey.set(key, series);
      }
      series.observe(seconds);
    },
    countSend(result, kind) {
      sends.inc({ result, kind });
    },
    countFunnel(event) {
      funnel[event]();
    },
    async render() {
      outboxMessages.reset();
      oldestPending.reset();
      workersLive.reset();
      try {
        const snapshot = await options.snapshot();
        for (const [status, count] of Object.entries(snapshot.counts)) {
          outboxMessages.set({ status }, count);
        }
        oldestPending.set(snapshot.oldestPendingSeconds ?? 0);
        workersLive.set(snapshot.workersLive);
        databaseUp.set(1);
      } catch (error) {
        databaseUp.set(0);
        options.onSnapshotError?.(error);
      }
      return registry.metrics();
    },
  };
}
