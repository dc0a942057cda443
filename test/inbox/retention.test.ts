// The inbox forgets: past INBOX_RETAIN_MESSAGES the oldest messages go, and past
// INBOX_RETAIN_AGE every message older than that goes, on arrival and from a timer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { manualClock } from '../../src/clock.ts';
import { type InboxStore, type InboxStoreOptions, openInboxStore } from '../../src/inbox/store.ts';
import { createTestRuntime } from '../support/runtime.ts';

const HOUR_MS = 3_600_000;

let dataDir: string;
let store: InboxStore | null = null;

function open(options: InboxStoreOptions): InboxStore {
  store = openInboxStore(dataDir, options);
  return store;
}

/** Ingests `count` messages through the transport's fast path and returns their ids. */
async function deliver(inbox: InboxStore, count: number, label = 'm'): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const subject = `${label}-${i}`;
    const raw = Buffer.from(
      `From: app@mailproof.test\r\nTo: user@example.com\r\n\r\n${subject}\r\n`,
    );
    ids.push(
      await inbox.ingest(raw, { from: null, to: ['user@example.com'] }, null, {
        from: 'app@mailproof.test',
        to: ['user@example.com'],
        subject,
        text: subject,
        html: `<p>${subject}</p>`,
        messageId: `<${subject}@mailproof.test>`,
      }),
    );
  }
  return ids;
}

function remainingIds(inbox: InboxStore): number[] {
  return inbox
    .list({ limit: 500 })
    .map((m) => m.id)
    .sort((a, b) => a - b);
}

beforeEach(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'mailproof-retention-'));
});

afterEach(() => {
  store?.close();
  store = null;
  vi.useRealTimers();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('retention by count', () => {
  it('keeps the newest `retain` messages, trimming every 50 arrivals', async () => {
    const inbox = open({ retain: 10 });
    const first = await deliver(inbox, 49);
    expect(inbox.count()).toBe(49);
    const [fiftieth] = await deliver(inbox, 1, 'last');
    expect(fiftieth).toBe(50);
    expect(remainingIds(inbox)).toEqual([...first.slice(-9), 50]);
  });

  it('trim() applies the count limit at once', async () => {
    const inbox = open({ retain: 10 });
    const ids = await deliver(inbox, 15);
    expect(inbox.trim()).toBe(5);
    expect(remainingIds(inbox)).toEqual(ids.slice(5));
  });
});

describe('retention by age', () => {
  it('deletes messages older than retainSeconds and keeps younger ones', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const inbox = open({ retain: 1000, retainSeconds: 3600, clock });
    const old = await deliver(inbox, 3, 'old');
    clock.advance(HOUR_MS / 2);
    const young = await deliver(inbox, 2, 'young');
    expect(inbox.get(young[0] ?? 0)?.receivedAt).toBe('2026-01-01T00:30:00.000Z');

    clock.advance(HOUR_MS / 2); // the old ones are exactly an hour old: still kept
    expect(inbox.trim()).toBe(0);
    clock.advance(1);
    expect(inbox.trim()).toBe(3);
    expect(remainingIds(inbox)).toEqual(young);
    expect(old.map((id) => inbox.get(id))).toEqual([null, null, null]);
  });

  it('runs on the arrival schedule, with the count limit', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const inbox = open({ retain: 1000, retainSeconds: 60, clock });
    await deliver(inbox, 10, 'old');
    clock.advance(61_000);
    const recent = await deliver(inbox, 39, 'recent');
    expect(inbox.count()).toBe(49);
    const [fiftieth] = await deliver(inbox, 1, 'fiftieth');
    expect(remainingIds(inbox)).toEqual([...recent, fiftieth]);
  });

  it('runs from a timer when no mail arrives, and close() stops the timer', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const inbox = open({ retain: 1000, retainSeconds: 3600, clock });
    await deliver(inbox, 3);
    expect(vi.getTimerCount()).toBe(1);

    clock.advance(2 * HOUR_MS);
    vi.advanceTimersByTime(59_000);
    expect(inbox.count()).toBe(3);
    vi.advanceTimersByTime(1_000);
    expect(inbox.count()).toBe(0);

    inbox.close();
    store = null;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps messages of any age when retainSeconds is 0', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const inbox = open({ retain: 1000, retainSeconds: 0, clock });
    const ids = await deliver(inbox, 3);
    clock.advance(365 * 24 * HOUR_MS);
    expect(inbox.trim()).toBe(0);
    expect(remainingIds(inbox)).toEqual(ids);
  });

  it('is wired from INBOX_RETAIN_AGE through the runtime', async () => {
    const rt = await createTestRuntime({ env: { INBOX_RETAIN_AGE: '1h' }, worker: false });
    try {
      expect(rt.config.inbox.retainSeconds).toBe(3600);
      const inbox = rt.inbox;
      if (!inbox) throw new Error('the inbox is disabled in this runtime');
      await deliver(inbox, 2);
      expect(inbox.trim()).toBe(0);
      // The runtime's inbox reads the system clock: move Date only, for the one trim.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + HOUR_MS + 1000 });
      expect(inbox.trim()).toBe(2);
    } finally {
      vi.useRealTimers();
      await rt.close();
    }
  });
});

describe('older inbox files', () => {
  it('gain the attachments column and the received_at index, and lose the recipients index', async () => {
    // The schema as it was before scopes and attachments.
    const db = new SQLite(path.join(dataDir, 'inbox.db'));
    db.exec(`CREATE TABLE messages (
      id INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, message_id TEXT,
      sender TEXT NOT NULL, recipients TEXT NOT NULL, recipients_search TEXT NOT NULL,
      subject TEXT NOT NULL, size INTEGER NOT NULL, read_at INTEGER, snippet TEXT NOT NULL,
      headers TEXT NOT NULL, text TEXT, html TEXT, links TEXT NOT NULL, verification_url TEXT,
      verification_code TEXT, provenance TEXT, raw BLOB NOT NULL)`);
    db.exec('CREATE INDEX messages_recipients ON messages(recipients_search)');
    db.prepare(`INSERT INTO messages (received_at, sender, recipients, recipients_search, subject,
      size, snippet, headers, links, raw) VALUES (?, 'a@b.test', '["c@d.test"]', '\nc@d.test\n',
      'Old one', 10, '', '[]', '[]', ?)`).run(Date.now(), Buffer.from('Subject: Old one\r\n\r\n'));
    db.close();

    const inbox = open({ retain: 1000, retainSeconds: 3600 });
    expect(inbox.get(1)).toMatchObject({ subject: 'Old one', attachments: [], scopes: [] });
    expect(await inbox.attachment(1, 0)).toBeNull();
    inbox.close();
    store = null;

    const check = new SQLite(path.join(dataDir, 'inbox.db'), { readonly: true });
    const indexes = check.prepare('PRAGMA index_list(messages)').all() as Array<{ name: string }>;
    check.close();
    expect(indexes.map((i) => i.name)).toContain('messages_received_at');
    // Searches are LIKE '%…%', which it could never serve; it only cost a write per message.
    expect(indexes.map((i) => i.name)).not.toContain('messages_recipients');
    const reopened = open({ retain: 1000 });
    expect(reopened.list({ to: 'c@d.test' }).map((m) => m.subject)).toEqual(['Old one']);
  });
});
