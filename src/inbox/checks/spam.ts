// The spam score: SpamAssassin's spamd, spoken to directly (SPAMC/1.5 over TCP) with REPORT, whose
// body is the human report with one "pts rule name description" row per fired rule.
// Protocol: https://svn.apache.org/repos/asf/spamassassin/trunk/spamd/PROTOCOL
import net from 'node:net';

export interface SpamRule {
  name: string;
  score: number;
  description: string;
}

export interface SpamResult {
  score: number;
  threshold: number;
  isSpam: boolean;
  rules: SpamRule[];
}

export type SpamdErrorCode =
  /** The connection could not be made, or broke before spamd answered. */
  | 'SPAMD_UNREACHABLE'
  | 'SPAMD_TIMEOUT'
  /** spamd answered with an error status (EX_PROTOCOL, EX_UNAVAILABLE, ...). */
  | 'SPAMD_ERROR'
  /** Whatever answered does not speak the spamd protocol, or the answer was cut short. */
  | 'SPAMD_BAD_RESPONSE'
  | 'SPAMD_MESSAGE_TOO_LARGE';

/** Every failure of the spam check. Messages name spamd's address, never the message's content. */
export class SpamdError extends Error {
  override name = 'SpamdError';
  constructor(
    message: string,
    readonly code: SpamdErrorCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * spamc's default --max-size (500 KB). spamd itself has no size limit: it checks whatever it is
 * sent, but SpamAssassin's body rules read only the first 50 000 bytes of each text part
 * (body_part_scan_size), so a larger message gets a score that ignores most of its text. Like
 * spamc, we do not send such a message; unlike spamc, we say so instead of passing it silently.
 */
export const MAX_MESSAGE_BYTES = 500 * 1024;

const DEFAULT_TIMEOUT_MS = 10_000;
/** A report is a few kilobytes; anything much larger is not spamd talking. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
const PROTOCOL = 'SPAMC/1.5';

/** sysexits.h names for spamd's status codes, for error messages a person can act on. */
const EXIT_NAMES: Record<number, string> = {
  64: 'EX_USAGE',
  65: 'EX_DATAERR',
  66: 'EX_NOINPUT',
  67: 'EX_NOUSER',
  68: 'EX_NOHOST',
  69: 'EX_UNAVAILABLE',
  70: 'EX_SOFTWARE',
  71: 'EX_OSERR',
  72: 'EX_OSFILE',
  73: 'EX_CANTCREAT',
  74: 'EX_IOERR',
  75: 'EX_TEMPFAIL',
  76: 'EX_PROTOCOL',
  77: 'EX_NOPERM',
  78: 'EX_CONFIG',
  79: 'EX_TIMEOUT',
};

interface SpamdResponse {
  headers: Map<string, string>;
  body: Buffer;
}

/** Scores `raw` (the RFC 5322 message as sent) with spamd's REPORT command. */
export async function checkSpam(
  raw: Buffer,
  options: { host: string; port: number; timeoutMs?: number },
): Promise<SpamResult> {
  const where = `spamd at ${formatAddress(options.host, options.port)}`;
  if (raw.length > MAX_MESSAGE_BYTES) {
    throw new SpamdError(
      `The message is ${raw.length} bytes; messages over ${MAX_MESSAGE_BYTES} bytes (spamc's limit) are not sent to spamd`,
      'SPAMD_MESSAGE_TOO_LARGE',
    );
  }
  const request = Buffer.concat([
    Buffer.from(`REPORT ${PROTOCOL}\r\nContent-length: ${raw.length}\r\n\r\n`, 'latin1'),
    raw,
  ]);
  const response = await exchange(request, options, where);
  const verdict = parseSpamHeader(response.headers.get('spam'), where);
  return { ...verdict, rules: parseReportRules(response.body.toString('utf8')) };
}

/** Sends one request and resolves with spamd's complete answer; the socket never outlives it. */
function exchange(
  request: Buffer,
  options: { host: string; port: number; timeoutMs?: number },
  where: string,
): Promise<SpamdResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let connected = false;
    let settled = false;
    const socket = net.connect({ host: options.host, port: options.port });

    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const settleWith = (complete: boolean) => {
      try {
        const response = parseResponse(Buffer.concat(chunks), complete, where);
        if (response) finish(() => resolve(response));
      } catch (error) {
        finish(() => reject(error));
      }
    };

    const timer = setTimeout(() => {
      finish(() =>
        reject(new SpamdError(`${where} did not answer within ${timeoutMs} ms`, 'SPAMD_TIMEOUT')),
      );
    }, timeoutMs);

    socket.on('connect', () => {
      connected = true;
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received <= MAX_RESPONSE_BYTES) return settleWith(false);
      const error = new SpamdError(
        `${where} sent more than ${MAX_RESPONSE_BYTES} bytes`,
        'SPAMD_BAD_RESPONSE',
      );
      finish(() => reject(error));
    });
    socket.on('end', () => settleWith(true));
    socket.on('close', () => settleWith(true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // spamd may answer an error and close while the message is still being written.
      if (chunks.length > 0) return settleWith(true);
      const reason = error.code ?? error.message;
      const message = connected
        ? `The connection to ${where} failed before it answered (${reason})`
        : `${where} is unreachable (${reason})`;
      finish(() => reject(new SpamdError(message, 'SPAMD_UNREACHABLE', { cause: error })));
    });
    socket.end(request);
  });
}

/**
 * Returns the whole answer once it has arrived, null while more is expected, and throws on an
 * error status or on bytes that are not spamd's protocol. `complete` means the peer has closed.
 */
function parseResponse(data: Buffer, complete: boolean, where: string): SpamdResponse | null {
  const statusEnd = data.indexOf('\r\n');
  if (statusEnd === -1) {
    if (!complete) return null;
    throw new SpamdError(
      data.length === 0
        ? `${where} closed the connection without answering`
        : `${where} did not answer in the spamd protocol`,
      'SPAMD_BAD_RESPONSE',
    );
  }
  assertStatusOk(data.subarray(0, statusEnd).toString('latin1'), where);

  const headerEnd = data.indexOf('\r\n\r\n', statusEnd);
  if (headerEnd === -1) {
    if (!complete) return null;
    throw new SpamdError(`${where} closed the connection mid-answer`, 'SPAMD_BAD_RESPONSE');
  }
  const headers = parseHeaders(data.subarray(statusEnd + 2, headerEnd).toString('latin1'));
  const body = data.subarray(headerEnd + 4);
  const length = headers.get('content-length');
  if (length === undefined) return complete ? { headers, body } : null;
  const expected = Number(length);
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw new SpamdError(`${where} sent an invalid Content-length`, 'SPAMD_BAD_RESPONSE');
  }
  if (body.length >= expected) return { headers, body: body.subarray(0, expected) };
  if (!complete) return null;
  throw new SpamdError(
    `${where} closed the connection after ${body.length} of ${expected} bytes`,
    'SPAMD_BAD_RESPONSE',
  );
}

function assertStatusOk(statusLine: string, where: string): void {
  const match = /^SPAMD\/\d+\.\d+ (\d+) ?(.*)$/.exec(statusLine);
  if (!match) {
    throw new SpamdError(`${where} did not answer in the spamd protocol`, 'SPAMD_BAD_RESPONSE');
  }
  const code = Number(match[1]);
  if (code === 0) return;
  const name = EXIT_NAMES[code] ?? 'unknown status';
  // spamd's text repeats our own request header at most, but a stranger could send anything.
  const text = (match[2] ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  throw new SpamdError(
    `${where} answered ${code} ${name}${text && text !== name ? `: ${text}` : ''}`,
    'SPAMD_ERROR',
  );
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** `Spam: True ; 15.2 / 5.0` (REPORT_IFSPAM says Yes/No). */
function parseSpamHeader(value: string | undefined, where: string): Omit<SpamResult, 'rules'> {
  const match = /^(True|False|Yes|No)\s*;\s*(-?\d+(?:\.\d+)?)\s*\/\s*(-?\d+(?:\.\d+)?)$/i.exec(
    value ?? '',
  );
  if (!match) {
    throw new SpamdError(`${where} answered without a valid Spam header`, 'SPAMD_BAD_RESPONSE');
  }
  return {
    isSpam: /^(true|yes)$/i.test(match[1] ?? ''),
    score: Number(match[2]),
    threshold: Number(match[3]),
  };
}

/**
 * The report's table ends it: a `---- ------ ------` rule, then one row per fired rule,
 *   " 2.7 MISSING_DATE           Missing Date: header"
 * with the score in four columns ("%4.1f", or "%4.0f" from 10 up), the name, and a description
 * wrapped onto lines indented by 27 or more spaces, as are rule details such as "[URIs: ...]".
 * Only the last separator counts: the content preview above it quotes the message.
 */
function parseReportRules(report: string): SpamRule[] {
  const lines = report.split(/\r?\n/);
  const separator = lines.findLastIndex((line) => /^-{4} -+ -+\s*$/.test(line));
  if (separator === -1) return [];
  const rules: SpamRule[] = [];
  for (const line of lines.slice(separator + 1)) {
    if (line.trim() === '') break;
    const row = /^ {0,3}(-?\d+(?:\.\d+)?) (\S+)(?: +(.*))?$/.exec(line);
    if (row) {
      rules.push({ score: Number(row[1]), name: row[2] ?? '', description: (row[3] ?? '').trim() });
      continue;
    }
    const last = rules.at(-1);
    if (last) last.description = `${last.description} ${line.trim()}`.trim();
  }
  return rules;
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
