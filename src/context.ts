import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, Random } from './clock.ts';
import type { Config } from './config.ts';
import type { Db } from './db/index.ts';
import type { OutboxRow } from './db/schema.ts';
import type { Branding } from './mail/templates/index.ts';

/** What the domain functions need; built once at start-up, replaced piecemeal in tests. */
export interface AppContext {
  config: Config;
  db: Db;
  clock: Clock;
  random: Random;
  log: Logger;
  branding: Branding;
  /**
   * In-process hooks: `contact.accepted` (AcceptedContactEvent), `contact.submitted` ({id}),
   * `signup.requested`, `email.verified` ({userId}), all after the commit; and
   * `verification.queued` ({purpose}) as the email is written. The metrics count them.
   */
  events: EventEmitter;
  /** Called after a transaction that queued mail has committed: wakes the outbox worker. */
  mailQueued(): void;
  /**
   * The in-process worker's lease for outbox rows about to be written, if it is running and has
   * room: rows written with it are handed over after the commit (`accept`) and sent without being
   * claimed. Absent or null: write the rows unleased and call `mailQueued`.
   */
  outboxHandoff?(): OutboxHandoff | null;
}

/** What a claim writes on an outbox row it leases to a worker. */
export interface OutboxLease {
  lockedBy: string;
  lockedUntil: number;
}

export interface OutboxHandoff extends OutboxLease {
  /** The committed rows written with this lease (attempt 1). */
  accept(rows: OutboxRow[]): void;
}

export function messageIdDomain(config: Config): string {
  return new URL(config.baseUrl).hostname;
}
