// The inbox keeps every caught message in its own SQLite file under DATA_DIR.
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { type Attachment, simpleParser } from 'mailparser';
import { type Clock, systemClock } from '../clock.ts';
import { startCheckpointer } from '../db/checkpointer.ts';
import { extractLinks, extractVerification, type Verification } from './extract.ts';

export interface Provenance {
  template: string;
  flow: string;
  requestId: string | null;
  outboxId: string;
  attempt: number;
  previousError?: string | null;
}

export interface MessageSummary {
  id: number;
  receivedAt: string;
  messageId: string | null;
  from: string;
  to: string[];
  subject: string;
  size: number;
  read: boolean;
  snippet: string;
  scopes: string[];
}

export interface MessageDetail extends MessageSummary {
  headers: Array<{ name: string; value: string }>;
  text: string | null;
  html: string | null;
  links: string[];
  verification: Verification;
  provenance: Provenance | null;
  attachments: AttachmentInfo[];
}

/** An attachment as listed: its bytes stay in the raw message and are decoded on download. */
export interface AttachmentInfo {
  /** Position among the message's attachments, as in `/_inbox/messages/:id/attachments/:index`. */
  index: number;
  /** Sanitised: no path, no control or bidi characters; `attachment-N` when the part has none. */
  filename: string;
  contentType: string;
  size: number;
  /** The Content-ID without angle brackets, as `cid:` URLs in the HTML name it. */
  contentId: string | null;
  inline: boolean;
}

export interface AttachmentContent extends AttachmentInfo {
  content: Buffer;
}

export interface Envelope {
  from: string | null;
  to: string[];
}

export interface ListOptions {
  to?: string;
  q?: string;
  /** A test's own messages: those sent to a `+scope` address or with an X-Mailproof-Scope header. */
  scope?: string;
  limit?: number;
}

interface Row {
  id: number;
  received_at: number;
  message_id: string | null;
  sender: string;
  recipients: string;
  scopes: string;
  subject: string;
  size: number;
  read_at: number | null;
  snippet: string;
  headers: string;
  text: string | null;
  html: string | null;
  links: string;
  verification_url: string | null;
  verification_code: string | null;
  provenance: string | null;
  attachments: string;
}

const TRIM_EVERY = 50;
const PRUNE_INTERVAL_MS = 60_000;
const MAX_FILENAME_CHARS = 200;

/** What the in-process transport knows about a message it has just composed. */
export interface KnownParts {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
  messageId: string;
}

interface ParsedMessage {
  from: string | null;
  to: string[];
  subject: string;
  text: string | null;
  html: string | null;
  messageId: string | null;
  headers: Array<{ name: string; value: string }>;
  attachments: AttachmentInfo[];
}

// Links are extracted by extract.ts; mailparser's own linkifying costs more than the rest.
const parseRaw = (raw: Buffer) =>
  simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });

async function parseMime(raw: Buffer): Promise<ParsedMessage> {
  const parsed = await parseRaw(raw);
  return {
    from: parsed.from?.text ?? null,
    to: addressesOf(parsed.to),
    subject: parsed.subject ?? '',
    text: parsed.text ?? null,
    html: typeof parsed.html === 'string' ? parsed.html : null,
    messageId: parsed.messageId ?? null,
    headers: parsed.headerLines.map((line) => ({
      name: line.key,
      value: line.line.slice(line.line.indexOf(':') + 1).trim(),
    })),
    attachments: parsed.attachments.map(describeAttachment),
  };
}

function describeAttachment(part: Attachment, index: number): AttachmentInfo {
  return {
    index,
    filename: safeFilename(part.filename, index),
    contentType: part.contentType || 'application/octet-stream',
    size: part.size,
    contentId: part.cid ?? null,
    // A part without a disposition is inline when the HTML embeds it (multipart/related).
    inline: part.contentDisposition ? part.contentDisposition === 'inline' : part.related === true,
  };
}

/**
 * The part's own name, never a path: it is offered as a download name, so directories, control
 * characters and bidi overrides (which can disguise "exe" as "pdf") are removed.
 */
export function safeFilename(name: string | undefined, index: number): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .normalize('NFC')
    .replace(/[\p{Cc}\p{Cf}]/gu, '')
    .replace(/^[\s.]+|\s+$/g, '');
  return Array.from(cleaned).slice(0, MAX_FILENAME_CHARS).join('') || `attachment-${index + 1}`;
}

function fromKnownParts(raw: Buffer, known: KnownParts): ParsedMessage {
  // The in-process transport composes text and HTML only: it never has attachments.
  return { ...known, headers: topLevelHeaders(raw), attachments: [] };
}

/** The message's own header block, unfolded (RFC 5322 §2.2.3), names lower-cased as mailparser does. */
function topLevelHeaders(raw: Buffer): Array<{ name: string; value: string }> {
  const end = raw.indexOf('\r\n\r\n');
  const block = raw.subarray(0, end === -1 ? raw.length : end).toString('utf8');
  return block
    .replace(/\r\n(?=[ \t])/g, '')
    .split('\r\n')
    .filter((line) => line.includes(':'))
    .map((line) => ({
      name: line.slice(0, line.indexOf(':')).trim().toLowerCase(),
      value: line.slice(line.indexOf(':') + 1).trim(),
    }));
}

const SUMMARY_COLUMNS =
  'id, received_at, message_id, sender, recipients, scopes, subject, size, read_at, snippet';

/** Scopes of a message: the `+tag` of each recipient (`user+tag@host`) and X-Mailproof-Scope. */
function scopesOf(recipients: string[], headers: Array<{ name: string; value: string }>): string[] {
  const scopes = new Set<string>();
  for (const address of recipients) {
    const local = address.slice(0, address.lastIndexOf('@'));
    const plus = local.indexOf('+');
    if (plus !== -1 && plus < local.length - 1) scopes.add(local.slice(plus + 1).toLowerCase());
  }
  for (const header of headers) {
    if (header.name === 'x-mailproof-scope' && header.value.trim()) {
      scopes.add(header.value.trim().toLowerCase());
    }
  }
  return [...scopes];
}

function joinScopes(scopes: string[]): string {
  return scopes.length ? `\n${scopes.join('\n')}\n` : '';
}

export interface InboxStore {
  ingest(
    raw: Buffer,
    envelope: Envelope,
    provenance?: Provenance | null,
    known?: KnownParts | null,
  ): Promise<number>;
  list(options?: ListOptions): MessageSummary[];
  get(id: number): MessageDetail | null;
  summary(id: number): MessageSummary | null;
  raw(id: number): Buffer | null;
  latestFor(address: string): MessageDetail | null;
  waitForLatest(
    address: string,
    waitMs: number,
    since?: number,
    signal?: AbortSignal,
  ): Promise<MessageDetail | null>;
  /** The attachment's bytes, decoded from the stored message; null for no such message or index. */
  attachment(id: number, index: number): Promise<AttachmentContent | null>;
  markRead(id: number): void;
  delete(id: number): boolean;
  /** Deletes every message, or only those of one scope. */
  deleteAll(scope?: string): number;
  count(): number;
  /** Applies both retention limits now (they also run every TRIM_EVERY messages and every minute). */
  trim(): number;
  events: EventEmitter;
  close(): void;
}

export interface InboxStoreOptions {
  /** Keep at most this many messages: the oldest go first. */
  retain: number;
  /** Delete messages received more than this many seconds ago; 0 or absent keeps them. */
  retainSeconds?: number;
  /** Stamps received_at and ages messages; tests pass a manual clock. */
  clock?: Clock;
}

export function openInboxStore(dataDir: string, options: InboxStoreOptions): InboxStore {
  const clock = options.clock ?? systemClock;
  const retainMs = (options.retainSeconds ?? 0) * 1000;
  const file = dataDir === ':memory:' ? ':memory:' : path.join(dataDir, 'inbox.db');
  if (file !== ':memory:') mkdirSync(dataDir, { recursive: true });
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('temp_store = MEMORY');
  // Each message is several pages of WAL: SQLite's own checkpoint would run inside an ingest
  // (on the event loop) every hundred or so messages.
  const checkpointer = file === ':memory:' ? null : startCheckpointer(db, file);
  db.exec(`
    CREATE TABLE IF NOT EXISTS messages (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      received_at INTEGER NOT NULL,
      message_id TEXT,
      sender TEXT NOT NULL,
      recipients TEXT NOT NULL,
      recipients_search TEXT NOT NULL,
      subject TEXT NOT NULL,
      size INTEGER NOT NULL,
      read_at INTEGER,
      snippet TEXT NOT NULL,
      headers TEXT NOT NULL,
      text TEXT,
      html TEXT,
      links TEXT NOT NULL,
      verification_url TEXT,
      verification_code TEXT,
      provenance TEXT,
      raw BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS messages_received_at ON messages(received_at);
  `);
  // Every recipient search is a LIKE '%…%', which no index can serve. Inbox files from earlier
  // versions have one: written on every message, never read.
  db.exec('DROP INDEX IF EXISTS messages_recipients');
  // Inbox files written before scopes and attachments existed gain the columns.
  const columns = db.prepare('PRAGMA table_info(messages)').all() as Array<{ name: string }>;
  if (!columns.some((c) => c.name === 'scopes')) {
    db.exec("ALTER TABLE messages ADD COLUMN scopes TEXT NOT NULL DEFAULT ''");
  }
  if (!columns.some((c) => c.name === 'attachments')) {
    db.exec("ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]'");
  }
  const events = new EventEmitter();
  events.setMaxListeners(0);

  const insert = db.prepare(`INSERT INTO messages (received_at, message_id, sender, recipients,
    recipients_search, scopes, subject, size, read_at, snippet, headers, text, html, links,
    verification_url, verification_code, provenance, attachments, raw)
    VALUES (@received_at, @message_id, @sender, @recipients, @recipients_search, @scopes, @subject, @size,
    NULL, @snippet, @headers, @text, @html, @links, @verification_url, @verification_code,
    @provenance, @attachments, @raw)`);
  const trimByCount = db.prepare(
    'DELETE FROM messages WHERE id <= (SELECT id FROM messages ORDER BY id DESC LIMIT 1 OFFSET ?)',
  );
  const trimByAge = db.prepare('DELETE FROM messages WHERE received_at < ?');
  function trim(): number {
    let deleted = trimByCount.run(options.retain).changes;
    if (retainMs > 0) deleted += trimByAge.run(clock.now() - retainMs).changes;
    return deleted;
  }
  // Age matters even when no mail arrives, so a timer trims too; it never keeps the process alive.
  const pruneTimer = setInterval(trim, PRUNE_INTERVAL_MS);
  pruneTimer.unref();
  const selectOne = db.prepare<[number], Row>('SELECT * FROM messages WHERE id = ?');
  const selectLatest = db.prepare<[string], Row>(
    "SELECT * FROM messages WHERE recipients_search LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT 1",
  );

  async function ingest(
    raw: Buffer,
    envelope: Envelope,
    provenance: Provenance | null = null,
    known: KnownParts | null = null,
  ): Promise<number> {
    // The in-process transport already has the parts it just encoded; anything else is parsed.
    const parsed = known ? fromKnownParts(raw, known) : await parseMime(raw);
    const recipients = unique([...envelope.to, ...parsed.to].map((a) => a.toLowerCase()));
    const { html, text, headers } = parsed;
    const links = extractLinks(html, text);
    const verification = extractVerification(links, text);
    const result = insert.run({
      received_at: clock.now(),
      message_id: parsed.messageId,
      sender: parsed.from ?? envelope.from ?? '',
      recipients: JSON.stringify(recipients),
      recipients_search: `\n${recipients.join('\n')}\n`,
      scopes: joinScopes(scopesOf(recipients, headers)),
      subject: parsed.subject,
      size: raw.length,
      snippet: (text ?? '').replace(/\s+/g, ' ').trim().slice(0, 140),
      headers: JSON.stringify(headers),
      text,
      html,
      links: JSON.stringify(links),
      verification_url: verification.url,
      verification_code: verification.code,
      provenance: provenance ? JSON.stringify(provenance) : null,
      attachments: JSON.stringify(parsed.attachments),
      raw,
    });
    const id = Number(result.lastInsertRowid);
    // Trimming scans the newest `retain` rows, so it runs every so often rather than every time.
    if (id % TRIM_EVERY === 0) trim();
    events.emit('message', { id, recipients });
    return id;
  }

  function latestFor(address: string): MessageDetail | null {
    const row = selectLatest.get(`%\n${escapeLike(address.trim().toLowerCase())}\n%`);
    return row ? toDetail(row) : null;
  }

  function waitForLatest(
    address: string,
    waitMs: number,
    since = 0,
    signal?: AbortSignal,
  ): Promise<MessageDetail | null> {
    const current = latestFor(address);
    if (current && current.id > since) return Promise.resolve(current);
    if (waitMs <= 0 || signal?.aborted) return Promise.resolve(null);
    const wanted = address.trim().toLowerCase();
    return new Promise((resolve) => {
      const onMessage = (event: { id: number; recipients: string[] }) => {
        if (!event.recipients.includes(wanted)) return;
        finish(selectOne.get(event.id) ?? null);
      };
      const onAbort = () => finish(null);
      const timer = setTimeout(onAbort, waitMs);
      // A client that hangs up stops its wait: no timer or listener outlives the request.
      function finish(row: Row | null) {
        clearTimeout(timer);
        events.off('message', onMessage);
        signal?.removeEventListener('abort', onAbort);
        resolve(row ? toDetail(row) : null);
      }
      events.on('message', onMessage);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  return {
    ingest,
    list({ to, q, scope, limit = 50 } = {}) {
      const where: string[] = [];
      const params: Record<string, string | number> = { limit: Math.min(Math.max(limit, 1), 500) };
      if (scope) {
        where.push("scopes LIKE @scope ESCAPE '\\'");
        params.scope = `%\n${escapeLike(scope.trim().toLowerCase())}\n%`;
      }
      if (to) {
        where.push("recipients_search LIKE @to ESCAPE '\\'");
        params.to = `%\n${escapeLike(to.trim().toLowerCase())}\n%`;
      }
      if (q) {
        where.push(
          "(subject LIKE @q ESCAPE '\\' OR recipients_search LIKE @q ESCAPE '\\' OR sender LIKE @q ESCAPE '\\' OR text LIKE @q ESCAPE '\\')",
        );
        params.q = `%${escapeLike(q.trim().toLowerCase())}%`;
      }
      const sql = `SELECT ${SUMMARY_COLUMNS} FROM messages ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
      return (db.prepare(sql).all(params) as Row[]).map(toSummary);
    },
    summary(id) {
      const row = db
        .prepare<[number], Row>(`SELECT ${SUMMARY_COLUMNS} FROM messages WHERE id = ?`)
        .get(id);
      return row ? toSummary(row) : null;
    },
    get(id) {
      const row = selectOne.get(id);
      return row ? toDetail(row) : null;
    },
    raw(id) {
      const row = db
        .prepare<[number], { raw: Buffer }>('SELECT raw FROM messages WHERE id = ?')
        .get(id);
      return row?.raw ?? null;
    },
    latestFor,
    waitForLatest,
    async attachment(id, index) {
      const row = db
        .prepare<[number], { raw: Buffer; attachments: string }>(
          'SELECT raw, attachments FROM messages WHERE id = ?',
        )
        .get(id);
      const info = row ? (JSON.parse(row.attachments) as AttachmentInfo[])[index] : undefined;
      if (!row || !info) return null;
      // The bytes live once, in the raw message; decoding them again costs a parse per download.
      const part = (await parseRaw(row.raw)).attachments[index];
      return part ? { ...info, content: part.content } : null;
    },
    markRead(id) {
      db.prepare('UPDATE messages SET read_at = ? WHERE id = ? AND read_at IS NULL').run(
        clock.now(),
        id,
      );
    },
    delete(id) {
      return db.prepare('DELETE FROM messages WHERE id = ?').run(id).changes === 1;
    },
    deleteAll(scope) {
      if (!scope) return db.prepare('DELETE FROM messages').run().changes;
      return db
        .prepare("DELETE FROM messages WHERE scopes LIKE ? ESCAPE '\\'")
        .run(`%\n${escapeLike(scope.trim().toLowerCase())}\n%`).changes;
    },
    count() {
      return (db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
    },
    trim,
    events,
    close() {
      clearInterval(pruneTimer);
      events.removeAllListeners();
      void checkpointer?.terminate();
      db.close();
    },
  };
}

function toSummary(row: Row): MessageSummary {
  return {
    id: row.id,
    receivedAt: new Date(row.received_at).toISOString(),
    messageId: row.message_id,
    from: row.sender,
    to: JSON.parse(row.recipients) as string[],
    subject: row.subject,
    size: row.size,
    read: row.read_at !== null,
    snippet: row.snippet,
    scopes: row.scopes ? row.scopes.split('\n').filter(Boolean) : [],
  };
}

function toDetail(row: Row): MessageDetail {
  return {
    ...toSummary(row),
    headers: JSON.parse(row.headers),
    text: row.text,
    html: row.html,
    links: JSON.parse(row.links),
    verification: { url: row.verification_url, code: row.verification_code },
    provenance: row.provenance ? JSON.parse(row.provenance) : null,
    attachments: JSON.parse(row.attachments),
  };
}

type AddressField =
  | { value: Array<{ address?: string }> }
  | Array<{ value: Array<{ address?: string }> }>
  | undefined;

function addressesOf(field: AddressField): string[] {
  if (!field) return [];
  const groups = Array.isArray(field) ? field : [field];
  return groups.flatMap((g) => g.value.map((v) => v.address ?? '').filter(Boolean));
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}
