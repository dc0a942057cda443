// §7 Prometheus metrics: request durations by route pattern (never a token), the outbox read at
// scrape time, send outcomes counted by the worker, the verification funnel, and who may scrape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MailTransport, SendError } from '../../src/mail/transport.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a long enough passphrase here';
const ADMIN_TOKEN = 'operator-admin-token-0123456789';

/** The value of one sample line (`name{labels} value`), or undefined when it is absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (line.slice(0, space) === series) return Number(line.slice(space + 1));
  }
  return undefined;
}

async function scrape(rt: TestRuntime, headers: Record<string, string> = {}) {
  const res = await rt.app.inject({ url: '/metrics', headers });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.body;
}

describe('/metrics', () => {
  let rt: TestRuntime;
  const failedOnce = new Set<string>();
  const transport: MailTransport = {
    name: 'scripted',
    async send(email) {
      if (email.to.startsWith('refused')) throw new SendError('SMTP 550: rejected', true);
      if (email.to.startsWith('retry-once') && !failedOnce.has(email.to)) {
        failedOnce.add(email.to);
        throw new SendError('SMTP 451: try later', false);
      }
    },
    async close() {},
  };

  beforeAll(async () => {
    rt = await createTestRuntime({ transport, env: { CONTACT_TO: 'owner@mailproof.test' } });
    await rt.worker?.stop();
  });

  afterAll(async () => {
    await rt?.close();
  });

  it('times requests by route pattern and status, never by the URL with its token', async () => {
    const token = 'Zm9vYmFyYmF6cXV4cXV1eHF1dXpxdXV4';
    await rt.app.inject({ url: `/verify/${token}` });
    await rt.app.inject({ url: `/verify/${token}x` });
    await rt.app.inject({ url: '/healthz' });
    await rt.app.inject({ url: `/no/such/path/${token}` });
    const text = await scrape(rt);
    expect(text).not.toContain(token);
    expect(
      sample(
        text,
        'mailproof_http_request_duration_seconds_count{method="GET",route="/verify/:token",status="400"}',
      ),
    ).toBe(2);
    expect(
      sample(
        text,
        'mailproof_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}',
      ),
    ).toBe(1);
    expect(
      sample(
        text,
        'mailproof_http_request_duration_seconds_count{method="GET",route="(unmatched)",status="404"}',
      ),
    ).toBe(1);
    expect(text).toMatch(
      /mailproof_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/healthz",status="200"\} \d/,
    );
  });

  it('counts the sign-up funnel: sign-ups, verification emails queued, addresses verified', async () => {
    const before = await scrape(rt);
    expect(sample(before, 'mailproof_signups_total')).toBe(0);
    expect(sample(before, 'mailproof_verification_emails_queued_total{purpose="signup"}')).toBe(0);
    expect(sample(before, 'mailproof_addresses_verified_total')).toBe(0);

    for (const email of ['funnel-a@example.com', 'funnel-b@example.com']) {
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email, password: PASSWORD },
      });
      expect(res.statusCode).toBe(202);
    }
    // Invalid input is not a sign-up.
    await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: 'not-an-address', password: PASSWORD },
    });
    const row = await rt.db.kysely
      .selectFrom('outbox')
      .select('payload')
      .where('to_address', '=', 'funnel-a@example.com')
      .executeTakeFirstOrThrow();
    const { url } = JSON.parse(row.payload ?? '{}') as { url: string };
    const token = url.split('/').pop();
    for (let i = 0; i < 2; i++) {
      // The second confirmation is "already verified": one address, counted once.
      await rt.app.inject({ method: 'POST', url: '/api/verify', payload: { token } });
    }

    const after = await scrape(rt);
    expect(sample(after, 'mailproof_signups_total')).toBe(2);
    expect(sample(after, 'mailproof_verification_emails_queued_total{purpose="signup"}')).toBe(2);
    expect(sample(after, 'mailproof_addresses_verified_total')).toBe(1);
  });

  it('counts contact messages submitted and accepted', async () => {
    const res = await rt.app.inject({
      method: 'POST',
      url: '/api/contact',
      payload: {
        name: 'Ada',
        email: 'ada-metrics@example.com',
        message: 'Hello there, a question.',
      },
    });
    expect(res.statusCode).toBe(202);
    const row = await rt.db.kysely
      .selectFrom('outbox')
      .select('payload')
      .where('to_address', '=', 'ada-metrics@example.com')
      .executeTakeFirstOrThrow();
    const { url } = JSON.parse(row.payload ?? '{}') as { url: string };
    const confirm = await rt.app.inject({
      method: 'POST',
      url: '/api/contact/confirm',
      payload: { token: url.split('/').pop() },
    });
    expect(confirm.json()).toEqual({ status: 'accepted' });
    const text = await scrape(rt);
    expect(sample(text, 'mailproof_contact_messages_total{stage="submitted"}')).toBe(1);
    expect(sample(text, 'mailproof_contact_messages_total{stage="accepted"}')).toBe(1);
    expect(sample(text, 'mailproof_verification_emails_queued_total{purpose="contact"}')).toBe(1);
  });

  it('reads the outbox depth and the oldest pending age from the database at scrape time', async () => {
    const text = await scrape(rt);
    const counts = await rt.db.kysely
      .selectFrom('outbox')
      .select(['status', rt.db.kysely.fn.countAll<number>().as('n')])
      .groupBy('status')
      .execute();
    const pending = Number(counts.find((c) => c.status === 'pending')?.n ?? 0);
    expect(pending).toBeGreaterThan(0);
    expect(sample(text, 'mailproof_outbox_messages{status="pending"}')).toBe(pending);
    expect(sample(text, 'mailproof_outbox_messages{status="sent"}')).toBe(0);
    expect(sample(text, 'mailproof_outbox_messages{status="dead"}')).toBe(0);
    expect(sample(text, 'mailproof_database_up')).toBe(1);

    rt.clock.advance(120_000);
    const later = await scrape(rt);
    expect(sample(later, 'mailproof_outbox_oldest_pending_age_seconds')).toBeGreaterThanOrEqual(
      120,
    );
  });

  it('counts send outcomes from the worker: sent, retried and dead, by kind', async () => {
    const worker = rt.worker;
    if (!worker) throw new Error('no worker');
    const pendingBefore =
      sample(await scrape(rt), 'mailproof_outbox_messages{status="pending"}') ?? 0;
    for (const email of ['retry-once@example.com', 'refused@example.com']) {
      await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email, password: PASSWORD },
      });
    }
    while ((await worker.drainOnce()) > 0) {}
    rt.clock.advance(3600_000);
    while ((await worker.drainOnce()) > 0) {}

    const text = await scrape(rt);
    expect(sample(text, 'mailproof_outbox_sends_total{result="sent",kind="email"}')).toBe(
      pendingBefore + 1,
    );
    expect(sample(text, 'mailproof_outbox_sends_total{result="retried",kind="email"}')).toBe(1);
    expect(sample(text, 'mailproof_outbox_sends_total{result="dead",kind="email"}')).toBe(1);
    expect(sample(text, 'mailproof_outbox_sends_total{result="sent",kind="webhook"}')).toBe(0);
    expect(sample(text, 'mailproof_outbox_messages{status="dead"}')).toBe(1);
    expect(sample(text, 'mailproof_outbox_messages{status="pending"}')).toBe(0);
    expect(sample(text, 'mailproof_outbox_oldest_pending_age_seconds')).toBe(0);
  });

  it('keeps each runtime in its own registry', async () => {
    const other = await createTestRuntime({ worker: false });
    try {
      await other.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email: 'elsewhere@example.com', password: PASSWORD },
      });
      expect(sample(await scrape(other), 'mailproof_signups_total')).toBe(1);
      // Two in the funnel test and two in the send-outcome test: none from the other runtime.
      expect(sample(await scrape(rt), 'mailproof_signups_total')).toBe(4);
    } finally {
      await other.close();
    }
  });
});

describe('who may scrape /metrics', () => {
  it('with ADMIN_TOKEN: the token as a bearer token or as the basic-auth password, else 401', async () => {
    const rt = await createTestRuntime({ worker: false, env: { ADMIN_TOKEN } });
    try {
      expect((await rt.app.inject({ url: '/metrics' })).statusCode).toBe(401);
      const wrong = await rt.app.inject({
        url: '/metrics',
        headers: { authorization: 'Bearer not-the-token' },
      });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.body).not.toContain('mailproof_');
      await scrape(rt, { authorization: `Bearer ${ADMIN_TOKEN}` });
      await scrape(rt, {
        authorization: `Basic ${Buffer.from(`prometheus:${ADMIN_TOKEN}`).toString('base64')}`,
      });
    } finally {
      await rt.close();
    }
  });

  it('without ADMIN_TOKEN: open in development, absent (404) in production', async () => {
    const dev = await createTestRuntime({ worker: false });
    try {
      await scrape(dev);
    } finally {
      await dev.close();
    }
    const prod = await createTestRuntime({
      worker: false,
      env: {
        NODE_ENV: 'production',
        SECRET_KEY: 'k9V2xQ7mZ4pR8tY1wE6uI3oA5sD0fG2hJ4kL',
        BASE_URL: 'https://mailproof.test',
        MAIL_SERVER: '127.0.0.1',
        LOG_LEVEL: 'silent',
      },
    });
    try {
      expect((await prod.app.inject({ url: '/metrics' })).statusCode).toBe(404);
    } finally {
      await prod.close();
    }
  });
});

describe('process metrics', () => {
  it('are on outside tests: CPU, memory and event loop lag', async () => {
    const metrics = createMetrics({
      processMetrics: true,
      snapshot: async () => ({
        counts: { pending: 3, sent: 2, dead: 1 },
        oldestPendingSeconds: 42,
        workersLive: 2,
      }),
    });
    const text = await metrics.render();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(sample(text, 'mailproof_outbox_oldest_pending_age_seconds')).toBe(42);
    expect(sample(text, 'mailproof_outbox_workers_live')).toBe(2);
  });

  it('a database that cannot be read is reported, not an error', async () => {
    let reported: unknown = null;
    const metrics = createMetrics({
      processMetrics: false,
      snapshot: async () => {
        throw new Error('connection refused');
      },
      onSnapshotError: (error) => {
        reported = error;
      },
    });
    const text = await metrics.render();
    expect(sample(text, 'mailproof_database_up')).toBe(0);
    expect(text).not.toMatch(/^mailproof_outbox_messages\{/m);
    expect((reported as Error).message).toBe('connection refused');
  });
});
