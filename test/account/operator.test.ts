// ASVS 7.4.5: an operator can end the sessions of one account, or of every account, from the
// command line (`mailproof users logout EMAIL | --all`).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { address } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime, testDb } from '../support/runtime.ts';
import { logIn, me, signUp } from './helpers.ts';

const BIN = path.resolve('bin/mailproof.js');

// The command reads the database the app uses; on SQLite that is a file a child can open.
describe.runIf(testDb === 'sqlite')('mailproof users logout', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt.close();
  });

  function cli(args: string[]) {
    return spawnSync(process.execPath, [BIN, 'users', 'logout', ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: rt.dataDir,
        DATABASE_URL: rt.config.databaseUrl,
        LOG_LEVEL: 'silent',
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
  }

  it('ends the sessions of one account, then of all, and never prints an address', async () => {
    const alice = address('alice');
    const bob = address('bob');
    await signUp(rt, alice);
    await signUp(rt, bob);
    const a1 = await logIn(rt, alice);
    const a2 = await logIn(rt, alice);
    const b1 = await logIn(rt, bob);

    const one = cli([alice.toUpperCase()]);
    expect(one.stderr).toBe('');
    expect(one.status).toBe(0);
    expect(one.stdout.trim()).toBe('2 sessions ended.');
    expect((await me(rt, a1)).statusCode).toBe(401);
    expect((await me(rt, a2)).statusCode).toBe(401);
    expect((await me(rt, b1)).statusCode).toBe(200);

    const all = cli(['--all']);
    expect(all.stdout.trim()).toBe('1 session ended.');
    expect((await me(rt, b1)).statusCode).toBe(401);
    expect(all.stdout + one.stdout).not.toContain('@');

    const bad = cli([]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('needs one address, or --all');

    // An address with no account is not "0 sessions ended": the operator is told, without it.
    const nobody = cli([address('nobody')]);
    expect(nobody.status).toBe(1);
    expect(nobody.stdout).toBe('');
    expect(nobody.stderr.trim()).toBe('mailproof: no account has that address');
    // An account with no session is.
    const none = cli([alice]);
    expect(none.status).toBe(0);
    expect(none.stdout.trim()).toBe('0 sessions ended.');
  });
});
