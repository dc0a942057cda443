// `npm run check:emails` as CI runs it: a child process over every template, exit 1 on a miss.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = path.resolve('bin/mailproof.js');
const dataDir = mkdtempSync(path.join(tmpdir(), 'mailproof-check-emails-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function checkEmails(args: string[], extraEnv: Record<string, string> = {}) {
  // Without CI in the environment: the spam score is checked by .ci/run's own run with spamd.
  return spawnSync(process.execPath, [BIN, 'check-emails', ...args], {
    cwd: path.resolve('.'),
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      DATA_DIR: dataDir,
      BASE_URL: 'https://app.example.com',
      ...extraEnv,
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

// Only in one project: the command does not use the test database.
const inSqliteProject = (process.env.MAILPROOF_TEST_DB ?? 'sqlite') === 'sqlite';
describe.runIf(inSqliteProject)('npm run check:emails', () => {
  it('passes every shipped template and says so', () => {
    const run = checkEmails([]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    for (const name of [
      'verify-email',
      'signup-existing',
      'contact-verify',
      'contact-delivery',
      'password-reset',
      'password-changed',
      'email-change-verify',
      'email-change-notice',
      'email-change-taken',
      'two-step-changed',
    ]) {
      expect(run.stdout).toMatch(new RegExp(`^ok {4}${name}: \\d+% of clients`, 'm'));
    }
    expect(run.stdout).toContain('All 10 templates pass the checks.');
  });

  it('fails on a template with a link to a page the app does not have, or unsupported CSS', () => {
    const run = checkEmails(['--template', 'test/fixtures/templates/broken.tsx']);
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^FAIL {2}broken-link:/m);
    expect(run.stdout).toContain('This app has no page at /welcome-tour');
    expect(run.stdout).toMatch(/^FAIL {2}unsupported-css:/m);
    expect(run.stdout).toMatch(/Unsupported: .*display:flex \([^)]*outlook\.windows/);
    expect(run.stdout).toMatch(/position \([^)]*gmail\.desktop-webmail/);
    expect(run.stdout).toContain('2 of 12 templates fail the checks.');
  });

  it('refuses to run without spamd in CI, and rejects unknown arguments', () => {
    const ci = checkEmails([], { CI: 'true' });
    expect(ci.status).toBe(2);
    expect(ci.stderr).toContain('SPAMD_HOST must be set in CI');
    const bad = checkEmails(['--nope']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown argument "--nope"');
  });
});
