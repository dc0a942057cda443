// The single source of truth for table shapes; every query is checked against it.
import type { Generated, Insertable, Selectable } from 'kysely';

/** Times are milliseconds since the epoch (BIGINT), the same in every dialect. */
export interface UsersTable {
  id: string;
  email: string;
  email_normalized: string;
  password_hash: string;
  email_verified_at: number | null;
  created_at: number;
  updated_at: number;
}

export type VerificationPurpose = 'signup' | 'contact' | 'reset' | 'email_change';

/** One live secret per (purpose, target): a link token and a code, both stored only as hashes. */
export interface VerificationsTable {
  id: string;
  purpose: VerificationPurpose;
  target: string;
  user_id: string | null;
  token_hash: string;
  code_hash: string;
  code_attempts: Generated<number>;
  expires_at: number;
  code_expires_at: number;
  used_at: number | null;
  created_at: number;
}

export interface SessionsTable {
  id_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  last_seen_at: number;
}

export type OutboxStatus = 'pending' | 'sent' | 'dead';
export type OutboxKind = 'email' | 'webhook';

export interface OutboxTable {
  id: string;
  /** `email`: to_address is a mailbox; `webhook`: to_address is a URL and payload the event. */
  kind: Generated<OutboxKind>;
  message_id: string;
  to_address: string;
  template: string;
  /** Template data; cleared once sent, since it may carry a one-time link. */
  payload: string | null;
  flow: string;
  request_id: string | null;
  status: OutboxStatus;
  attempts: Generated<number>;
  next_attempt_at: number;
  locked_until: number | null;
  locked_by: string | null;
  last_error: string | null;
  created_at: number;
  sent_at: number | null;
}

export type ContactStatus = 'pending' | 'accepted';

/** A contact-form message; it counts (and is delivered) only once its sender confirms. */
export interface ContactMessagesTable {
  id: string;
  name: string;
  email: string;
  email_normalized: string;
  message: string;
  status: ContactStatus;
  created_at: number;
  accepted_at: number | null;
}

/** A running outbox worker: written when it starts, refreshed while it runs, deleted when it stops. */
export interface WorkerHeartbeatsTable {
  /** The worker's id: host, process id and a random part. */
  id: string;
  started_at: number;
  beat_at: number;
}

/**
 * Two-step sign-in (docs/decisions/014). An account has it on while it has a `two_step_totp`
 * row. Secrets are stored encrypted (AES-256-GCM), codes only as keyed hashes.
 */
export interface TwoStepTotpTable {
  user_id: string;
  /** The authenticator's secret, encrypted under a key derived from SECRET_KEY. */
  secret: string;
  /** The time step of the last code accepted: a code of that step or an older one is refused. */
  last_used_step: number | null;
  enabled_at: number;
}

/** A secret shown to the owner but not yet confirmed with a code: bound to one session. */
export interface TwoStepEnrolmentsTable {
  session_id_hash: string;
  user_id: string;
  secret: string;
  expires_at: number;
}

export interface TwoStepRecoveryCodesTable {
  id: string;
  user_id: string;
  /** HMAC-SHA-256 of the code, keyed from SECRET_KEY and bound to the account. */
  code_hash: string;
  used_at: number | null;
  created_at: number;
}

/** A login whose password was right, waiting for the second step. */
export interface TwoStepChallengesTable {
  /** SHA-256 of the random token the browser (cookie) or API client holds. */
  id_hash: string;
  user_id: string;
  attempts: Generated<number>;
  created_at: number;
  expires_at: number;
}

export interface Database {
  contact_messages: ContactMessagesTable;
  users: UsersTable;
  verifications: VerificationsTable;
  sessions: SessionsTable;
  outbox: OutboxTable;
  worker_heartbeats: WorkerHeartbeatsTable;
  two_step_totp: TwoStepTotpTable;
  two_step_enrolments: TwoStepEnrolmentsTable;
  two_step_recovery_codes: TwoStepRecoveryCodesTable;
  two_step_challenges: TwoStepChallengesTable;
}

export type User = Selectable<UsersTable>;
export type Verification = Selectable<VerificationsTable>;
export type OutboxRow = Selectable<OutboxTable>;
export type NewOutboxRow = Insertable<OutboxTable>;
export type ContactMessage = Selectable<ContactMessagesTable>;
