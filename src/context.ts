import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, Random } from './clock.ts';
import type { Config } from './config.ts';
import type { Db } from './db/index.ts';
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
}

export function messageIdDomain(config: Config): string {
  return new URL(config.baseUrl).hostname;
}
