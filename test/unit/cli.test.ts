// The real entry point, as a user runs it: `mailproof <command>` in a child process.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

const BIN = path.resolve('bin/mailproof.js');
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailproof-cli-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function cli(args: string[], env: Record<string, string>, cwd: string) {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out; output so far:\n${output}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(text)) {
        clearTimeout(timer);
        resolve(output);
      }
    });
  });
}

describe('mailproof CLI (SQLite)', () => {
  it('migrate creates the database; users list and outbox status read it', () => {
    const dir = tempDir();
    const env = { DATA_DIR: path.join(dir, 'data') };
    const migrate = cli(['migrate'], env, dir);
    expect(migrate.status).toBe(0);
    expect(migrate.stdout).toContain('Applied migrations: 001_initial, 002_contact');
    const again = cli(['migrate'], env, dir);
    expect(again.stdout).toContain('Database is up to date.');
    const users = cli(['users', 'list'], env, dir);
    expect(users.status).toBe(0);
    expect(users.stdout).toContain('No accounts yet.');
    const outbox = cli(['outbox', 'status'], env, dir);
    expect(outbox.stdout).toMatch(/pending\s+0\nsent\s+0\ndead\s+0/);
  });

  it('serve and worker refuse a database that lacks migrations, saying what to run', async () => {
    const dir = tempDir();
    const env = {
      DATA_DIR: path.join(dir, 'data'),
      PORT: String(await freePort()),
      INBOX_SMTP_PORT: '0',
    };
    for (const command of ['serve', 'worker']) {
      const result = cli([command], env, dir);
      expect(result.status, command).toBe(1);
      expect(result.stderr.trim().split('\n'), command).toHaveLength(1);
      expect(result.stderr, command).toMatch(
        /^mailproof: the database lacks \d+ migrations \(the newest: \w+\); run `npx mailproof migrate` first/,
      );
    }
    // Once migrated, serve starts.
    expect(cli(['migrate'], env, dir).status).toBe(0);
    const child = spawn(process.execPath, [BIN, 'serve'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await waitForOutput(child, 'Mailproof is running', 30_000);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  it('says which setting is at fault when the database cannot be reached', () => {
    const dir = tempDir();
    // Nothing listens on port 1 of the loopback: the connection is refused at once.
    const result = cli(
      ['migrate'],
      { DATABASE_URL: 'postgres://postgres:hunter2secret@127.0.0.1:1/x' },
      dir,
    );
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^mailproof: cannot reach the database \(DATABASE_URL\): .*ECONNREFUSED/,
    );
    expect(result.stderr).not.toContain('hunter2secret');
  });

  it('inbox refuses to run in production without INBOX_AUTH', () => {
    const dir = tempDir();
    const env = {
      NODE_ENV: 'production',
      SECRET_KEY: 'a'.repeat(40),
      BASE_URL: 'https://mailproof.example',
      MAIL_SERVER: 'smtp.example',
      DATA_DIR: path.join(dir, 'data'),
    };
    const result = cli(['inbox'], env, dir);
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      'mailproof: configuration error: INBOX_AUTH must be set (user:password) to run `mailproof inbox` in production',
    );
  });

  it('refuses arguments a command does not take, with usage and exit code 2', () => {
    const dir = tempDir();
    const env = { DATA_DIR: path.join(dir, 'data') };
    for (const args of [
      ['serve', '--port', '4000'],
      ['start', 'now'],
      ['migrate', '--dry-run'],
      ['users', 'list', '--bogus'],
      ['contact', 'list', 'all'],
    ]) {
      const result = cli(args, env, dir);
      const name =
        args[0] === 'users' || args[0] === 'contact' ? args.slice(0, 2) : args.slice(0, 1);
      const extra = args[name.length];
      expect(result.status, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toContain(
        `mailproof ${name.join(' ')}: unexpected argument "${extra}"; settings come from the environment`,
      );
      expect(result.stderr, args.join(' ')).toContain('Usage');
    }
    const worker = cli(['worker', '--bogus'], env, dir);
    expect(worker.status).toBe(2);
    expect(worker.stderr).toMatch(/^mailproof worker: Unknown option '--bogus'/);
  });

  it('contact list shows accepted messages only, newest first', () => {
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    expect(cli(['migrate'], { DATA_DIR: dataDir }, dir).status).toBe(0);
    const db = new Database(path.join(dataDir, 'mailproof.db'));
    const insert = db.prepare(
      `INSERT INTO contact_messages (id, name, email, email_normalized, message, status, created_at, accepted_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run(
      'a',
      'Ada',
      'ada@example.com',
      'ada@example.com',
      'first\nmessage',
      'accepted',
      1,
      1000,
    );
    insert.run('b', 'Bob', 'bob@example.com', 'bob@example.com', 'newer', 'accepted', 2, 2000);
    insert.run(
      'c',
      'Eve',
      'eve@example.com',
      'eve@example.com',
      'never confirmed',
      'pending',
      3,
      null,
    );
    db.close();
    const result = cli(['contact', 'list'], { DATA_DIR: dataDir }, dir);
    expect(result.status).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('Bob <bob@example.com>\tnewer');
    expect(lines[1]).toContain('Ada <ada@example.com>\tfirst message');
    expect(result.stdout).not.toContain('never confirmed');
  });

  it('refuses an unknown command with usage and exit code 2', () => {
    const dir = tempDir();
    const result = cli(['frobnicate'], { DATA_DIR: path.join(dir, 'data') }, dir);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
    expect(result.stderr).toContain('Usage: mailproof <command>');
  });

  it('start migrates, serves, delivers mail to the inbox and stops cleanly on SIGTERM', async () => {
    const dir = tempDir();
    const port = await freePort();
    const smtpPort = await freePort();
    const child = spawn(process.execPath, [BIN, 'start'], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: path.join(dir, 'data'),
        PORT: String(port),
        INBOX_SMTP_PORT: String(smtpPort),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const banner = await waitForOutput(child, 'SMTP inbox', 20_000);
      expect(banner).toContain(`Mailproof is running at http://localhost:${port}`);
      expect(banner).toContain(`Inbox:       http://localhost:${port}/_inbox`);
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${base}/readyz`)).json()).toMatchObject({
        status: 'ready',
        database: 'ok',
        worker: { inProcess: true },
      });
      const signup = await fetch(`${base}/api/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'cli@example.com', password: 'a passphrase long enough' }),
      });
      expect(signup.status).toBe(202);
      const latest = await fetch(`${base}/_inbox/api/latest?to=cli@example.com&wait=5000`);
      expect(latest.status).toBe(200);
      const message = (await latest.json()) as { verification: { url: string; code: string } };
      expect(message.verification.url).toMatch(new RegExp(`^http://localhost:${port}/verify/`));
      expect(message.verification.code).toMatch(/^\d{8}$/);
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
