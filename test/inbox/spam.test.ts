// The spam check speaks spamd's protocol: scores and rules come from a real spamd; the failures a
// real one will not produce on demand (silence, garbage, cut-off answers) come from fake servers.
import net from 'node:net';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkSpam,
  MAX_MESSAGE_BYTES,
  type SpamdError,
  type SpamResult,
} from '../../src/inbox/checks/spam.ts';
import { renderEmail } from '../../src/mail/render.ts';
import { type Branding, templates } from '../../src/mail/templates/index.ts';
import { type Spamd, spamdSkipReason, startSpamd } from '../support/spamd.ts';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
/** Put in every test message, so an error message can be searched for the message's content. */
const CONTENT_MARKER = 'marker-7f3a91-content';

const branding: Branding = {
  appName: 'Mailproof',
  brandColor: '#2f5bd3',
  baseUrl: 'http://mailproof.test',
};

function compose(mail: { from: string; subject: string; text: string; html?: string }) {
  return new MailComposer({
    to: 'ada@example.com',
    date: new Date('2025-11-27T16:00:00Z'),
    messageId: '<20251127160000.a1b2c3d4e5f6@mailproof.test>',
    ...mail,
  })
    .compile()
    .build();
}

function verifyEmailMessage(): Promise<Buffer> {
  const template = templates['verify-email'];
  const rendered = renderEmail(template, template.sample(branding), branding);
  return compose({
    from: 'Mailproof <no-reply@mailproof.test>',
    subject: rendered.subject,
    text: rendered.text,
    html: rendered.html,
  });
}

function gtubeMessage(): Promise<Buffer> {
  return compose({
    from: 'Mailproof <no-reply@mailproof.test>',
    subject: 'A test of the spam check',
    text: `This is ${CONTENT_MARKER}.\n\n${GTUBE}\n`,
  });
}

async function rejection(promise: Promise<unknown>): Promise<SpamdError> {
  try {
    await promise;
  } catch (error) {
    return error as SpamdError;
  }
  throw new Error('expected checkSpam to reject');
}

/** Report rows are rounded to 0.1 (to 1 from 10 up), and so is the total. */
function roundingTolerance(result: SpamResult): number {
  return 0.05 + result.rules.reduce((sum, r) => sum + (Math.abs(r.score) >= 10 ? 0.5 : 0.05), 0);
}

function expectWellFormedRules(result: SpamResult) {
  expect(result.rules.length).toBeGreaterThan(0);
  for (const rule of result.rules) {
    expect(rule.name).toMatch(/^[A-Z][A-Z0-9_]+$/);
    expect(Number.isFinite(rule.score)).toBe(true);
    expect(rule.description.length).toBeGreaterThan(0);
    expect(rule.description).not.toMatch(/\s{2}|^\s|\s$/);
  }
  const sum = result.rules.reduce((total, r) => total + r.score, 0);
  expect(Math.abs(sum - result.score)).toBeLessThanOrEqual(roundingTolerance(result));
}

// These tests use no database, so they run in the sqlite project only: the postgres and mariadb
// projects would start another spamd to repeat them. CI runs every project, so there they always
// run (a missing spamd fails beforeAll with the package to install); elsewhere a missing spamd
// skips them.
const inSqliteProject = (process.env.MAILPROOF_TEST_DB ?? 'sqlite') === 'sqlite';
const notHere = inSqliteProject ? spamdSkipReason() : 'the sqlite project runs them';
if (notHere && inSqliteProject) {
  console.warn(`test/inbox/spam.test.ts: skipping the tests against a real spamd: ${notHere}`);
}

describe.skipIf(notHere !== null)(
  `checkSpam against a real spamd${notHere ? ` (skipped: ${notHere})` : ''}`,
  () => {
    // A spamd that cannot start fails every test here with the reason, rather than the hook
    // alone: the tests then count as failed, not skipped, in every report.
    let started: Promise<Spamd>;
    beforeAll(async () => {
      started = startSpamd();
      await started.catch(() => {});
    }, 120_000);
    afterAll(async () => {
      await (await started.catch(() => null))?.stop();
    });

    it("scores the app's own verification email low, against a threshold of 5.0", async () => {
      const result = await checkSpam(await verifyEmailMessage(), await started);
      expect(result.threshold).toBe(5);
      expect(result.isSpam).toBe(false);
      expect(result.score).toBeLessThanOrEqual(1);
      expectWellFormedRules(result);
    });

    it('scores the GTUBE string as spam, with the GTUBE rule and its description', async () => {
      const result = await checkSpam(await gtubeMessage(), await started);
      expect(result.isSpam).toBe(true);
      expect(result.score).toBeGreaterThanOrEqual(1000);
      expect(result.threshold).toBe(5);
      expect(result.rules).toContainEqual({
        name: 'GTUBE',
        score: 1000,
        description: 'BODY: Generic Test for Unsolicited Bulk Email',
      });
      expectWellFormedRules(result);
    });

    it('gives every fired rule of a spammy message its own score and description', async () => {
      const raw = await compose({
        from: 'Winner <winner@example.com>',
        subject: 'FREE MONEY!!! ACT NOW',
        text: 'CLICK HERE to claim your prize of $1,000,000!!! 100% FREE, no risk. Lose weight fast!',
        html: '<p><b>CLICK HERE</b> to claim your prize of $1,000,000!!! 100% FREE, no risk. <a href="http://198.51.100.7/claim">Claim</a> Lose weight fast!</p>',
      });
      const result = await checkSpam(raw, await started);
      expectWellFormedRules(result);
      const scored = result.rules.filter((r) => r.score !== 0);
      expect(scored.length).toBeGreaterThanOrEqual(3);
      expect(new Set(scored.map((r) => r.score)).size).toBeGreaterThan(1);
      expect(result.rules.map((r) => r.name)).toContain('SUBJ_ALL_CAPS');
      expect(result.score).toBeGreaterThan(1);
    });

    it('checks a message right at the size limit', async () => {
      const head = await gtubeMessage();
      const line = `${'All work and no play makes Jack a dull boy. '.repeat(2)}\r\n`;
      const padding = Buffer.from(line.repeat(Math.ceil(MAX_MESSAGE_BYTES / line.length)));
      const raw = Buffer.concat([head, padding]).subarray(0, MAX_MESSAGE_BYTES);
      expect(raw.length).toBe(MAX_MESSAGE_BYTES);
      const result = await checkSpam(raw, await started);
      expect(result.rules.map((r) => r.name)).toContain('GTUBE');
    });
  },
);

interface FakeSpamd {
  port: number;
  /** Every request received, once the client has finished sending it. */
  requests: Buffer[];
  connections: number;
  /** Resolves when the client's connection is gone (it closed or destroyed its socket). */
  clientGone(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The client half-closes after its request, so only writing shows whether it has also closed the
 * connection: a write to a closed socket is answered with a reset, and the socket closes.
 */
async function probeUntilClosed(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return;
  let probe: NodeJS.Timeout | undefined;
  let limit: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('close', () => resolve());
      probe = setInterval(() => socket.writable && socket.write('probe\r\n'), 20);
      limit = setTimeout(() => reject(new Error('the client kept the connection open')), 2_000);
    });
  } finally {
    clearInterval(probe);
    clearTimeout(limit);
  }
}

/** A loopback server that reads a whole request, then answers it however the test says. */
async function fakeSpamd(
  answer: (socket: net.Socket, request: Buffer) => void,
): Promise<FakeSpamd> {
  const sockets = new Set<net.Socket>();
  const fake = {
    port: 0,
    requests: [] as Buffer[],
    connections: 0,
    clientGone: () => Promise.all([...sockets].map(probeUntilClosed)).then(() => undefined),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    fake.connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      const request = Buffer.concat(chunks);
      fake.requests.push(request);
      answer(socket, request);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as net.AddressInfo).port;
  return fake;
}

function spamdAnswer(spam: string, body: string): string {
  const length = Buffer.byteLength(body);
  return `SPAMD/1.1 0 EX_OK\r\nContent-length: ${length}\r\nSpam: ${spam}\r\n\r\n${body}`;
}

/** A real REPORT body from spamd 4.0.1 (Debian 12), with a wrapped description and a detail. */
const RECORDED_REPORT = [
  'Spam detection software, running on the system "vm",',
  'has identified this incoming email as possible spam.',
  '',
  'Content preview:  CLICK HERE to claim your prize',
  '---- ---------------------- --------------------------------------------------',
  ' 9.9 QUOTED_ROW             A table quoted by the message is not the report',
  '',
  'Content analysis details:   (8.0 points, 5.0 required)',
  '',
  ' pts rule name              description',
  '---- ---------------------- --------------------------------------------------',
  '-0.0 NO_RECEIVED            Informational: message has no Received headers',
  ' 0.5 SUBJ_ALL_CAPS          Subject is all capitals',
  ' 0.0 FREEMAIL_FROM          Sender email is commonly abused enduser mail provider',
  '                            [winner(at)gmail.com]',
  ' 0.2 NORMAL_HTTP_TO_IP      URI: URI host has a public dotted-decimal IPv4',
  '                            address',
  '1000 GTUBE                  BODY: Generic Test for Unsolicited Bulk Email',
  ' -15 A_VERY_LONG_RULE_NAME_OVER_22 Made up: a name wider than its column',
  '',
  '',
].join('\n');

describe('checkSpam against fake servers', () => {
  const fakes: FakeSpamd[] = [];
  async function fake(answer: (socket: net.Socket, request: Buffer) => void) {
    const server = await fakeSpamd(answer);
    fakes.push(server);
    return server;
  }
  afterAll(async () => {
    await Promise.all(fakes.map((f) => f.close()));
  });

  it('sends REPORT with the exact byte length, then the message unchanged', async () => {
    const server = await fake((socket) =>
      socket.end(spamdAnswer('False ; 0.3 / 5.0', RECORDED_REPORT)),
    );
    const raw = Buffer.from(`Subject: Grüße\r\n\r\nÜber ${CONTENT_MARKER} — ✓\r\n`, 'utf8');
    await checkSpam(raw, { host: '127.0.0.1', port: server.port });
    expect(server.requests).toHaveLength(1);
    const head = `REPORT SPAMC/1.5\r\nContent-length: ${raw.length}\r\n\r\n`;
    expect(raw.length).toBeGreaterThan(raw.toString('utf8').length);
    expect(server.requests[0]).toEqual(Buffer.concat([Buffer.from(head), raw]));
  });

  it("parses the Spam header and the report's rows, joining wrapped lines", async () => {
    const server = await fake((socket) =>
      socket.end(spamdAnswer('True ; 1003.3 / 5.0', RECORDED_REPORT)),
    );
    const result = await checkSpam(await gtubeMessage(), { host: '127.0.0.1', port: server.port });
    expect(result).toEqual({
      score: 1003.3,
      threshold: 5,
      isSpam: true,
      rules: [
        {
          name: 'NO_RECEIVED',
          score: -0,
          description: 'Informational: message has no Received headers',
        },
        { name: 'SUBJ_ALL_CAPS', score: 0.5, description: 'Subject is all capitals' },
        {
          name: 'FREEMAIL_FROM',
          score: 0,
          description:
            'Sender email is commonly abused enduser mail provider [winner(at)gmail.com]',
        },
        {
          name: 'NORMAL_HTTP_TO_IP',
          score: 0.2,
          description: 'URI: URI host has a public dotted-decimal IPv4 address',
        },
        {
          name: 'GTUBE',
          score: 1000,
          description: 'BODY: Generic Test for Unsolicited Bulk Email',
        },
        {
          name: 'A_VERY_LONG_RULE_NAME_OVER_22',
          score: -15,
          description: 'Made up: a name wider than its column',
        },
      ],
    });
  });

  it('reads a negative score, and an answer that arrives in pieces', async () => {
    const answer = spamdAnswer('False ; -1.9 / 5.0', RECORDED_REPORT);
    const server = await fake((socket) => {
      socket.write(answer.slice(0, 7));
      setTimeout(() => socket.write(answer.slice(7, 60)), 20);
      setTimeout(() => socket.end(answer.slice(60)), 40);
    });
    const result = await checkSpam(await gtubeMessage(), { host: '127.0.0.1', port: server.port });
    expect(result).toMatchObject({ score: -1.9, threshold: 5, isSpam: false });
    expect(result.rules).toHaveLength(6);
  });

  it('does not wait for the server to close once the whole answer is in', async () => {
    const server = await fake((socket) =>
      socket.write(spamdAnswer('False ; 0.1 / 5.0', RECORDED_REPORT)),
    );
    const started = Date.now();
    const result = await checkSpam(await gtubeMessage(), {
      host: '127.0.0.1',
      port: server.port,
      timeoutMs: 2_000,
    });
    expect(result.score).toBe(0.1);
    expect(Date.now() - started).toBeLessThan(1_000);
    await server.clientGone();
  });

  it('fails quickly with SPAMD_UNREACHABLE when nothing listens on the port', async () => {
    const server = await fake(() => {});
    const port = server.port;
    await server.close();
    const started = Date.now();
    const error = await rejection(
      checkSpam(await gtubeMessage(), { host: '127.0.0.1', port, timeoutMs: 5_000 }),
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error.name).toBe('SpamdError');
    expect(error.code).toBe('SPAMD_UNREACHABLE');
    expect(error.message).toBe(`spamd at 127.0.0.1:${port} is unreachable (ECONNREFUSED)`);
  });

  it('gives up after timeoutMs on a server that never answers, and closes the connection', async () => {
    const server = await fake(() => {});
    const started = Date.now();
    const error = await rejection(
      checkSpam(await gtubeMessage(), { host: '127.0.0.1', port: server.port, timeoutMs: 300 }),
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
    expect(error.code).toBe('SPAMD_TIMEOUT');
    expect(error.message).toBe(`spamd at 127.0.0.1:${server.port} did not answer within 300 ms`);
    expect(server.requests).toHaveLength(1);
    await server.clientGone();
  });

  it("reports spamd's error status with its sysexits name, and no message content", async () => {
    const server = await fake((socket) => socket.end('SPAMD/1.1 76 Bad header line\r\n'));
    const error = await rejection(
      checkSpam(await gtubeMessage(), { host: '127.0.0.1', port: server.port }),
    );
    expect(error.code).toBe('SPAMD_ERROR');
    expect(error.message).toBe(
      `spamd at 127.0.0.1:${server.port} answered 76 EX_PROTOCOL: Bad header line`,
    );
    expect(error.message).not.toContain(CONTENT_MARKER);
  });

  it('rejects an error status even while the server keeps the connection open', async () => {
    const server = await fake((socket) =>
      socket.write('SPAMD/1.0 69 Service Unavailable: TELL commands are not enabled\r\n'),
    );
    const error = await rejection(
      checkSpam(await gtubeMessage(), { host: '127.0.0.1', port: server.port, timeoutMs: 5_000 }),
    );
    expect(error.code).toBe('SPAMD_ERROR');
    expect(error.message).toMatch(/answered 69 EX_UNAVAILABLE: Service Unavailable: TELL/);
  });

  it.each([
    [
      'another protocol',
      'HTTP/1.1 400 Bad Request\r\n\r\n',
      'did not answer in the spamd protocol',
    ],
    ['no answer at all', '', 'closed the connection without answering'],
    [
      'headers cut off',
      'SPAMD/1.1 0 EX_OK\r\nContent-length: 9',
      'closed the connection mid-answer',
    ],
    [
      'a body cut short',
      'SPAMD/1.1 0 EX_OK\r\nContent-length: 500\r\nSpam: False ; 0.0 / 5.0\r\n\r\nshort',
      'closed the connection after 5 of 500 bytes',
    ],
    [
      'no Spam header',
      'SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n',
      'answered without a valid Spam header',
    ],
  ])('fails with SPAMD_BAD_RESPONSE on %s', async (_case, answer, message) => {
    const server = await fake((socket) => socket.end(answer));
    const error = await rejection(
      checkSpam(await gtubeMessage(), { host: '127.0.0.1', port: server.port }),
    );
    expect(error.code).toBe('SPAMD_BAD_RESPONSE');
    expect(error.message).toBe(`spamd at 127.0.0.1:${server.port} ${message}`);
  });

  it('stops reading a server that streams bytes without end', async () => {
    const server = await fake((socket) => socket.write(Buffer.alloc(1100 * 1024, 'x')));
    const error = await rejection(
      checkSpam(await gtubeMessage(), { host: '127.0.0.1', port: server.port, timeoutMs: 5_000 }),
    );
    expect(error.code).toBe('SPAMD_BAD_RESPONSE');
    expect(error.message).toBe(`spamd at 127.0.0.1:${server.port} sent more than 1048576 bytes`);
    await server.clientGone();
  });

  it("does not send a message over spamc's 500 KB limit, and says why", async () => {
    const server = await fake(() => {});
    const raw = Buffer.alloc(MAX_MESSAGE_BYTES + 1, 'a');
    const error = await rejection(checkSpam(raw, { host: '127.0.0.1', port: server.port }));
    expect(error.code).toBe('SPAMD_MESSAGE_TOO_LARGE');
    expect(error.message).toBe(
      "The message is 512001 bytes; messages over 512000 bytes (spamc's limit) are not sent to spamd",
    );
    expect(server.connections).toBe(0);
  });
});
