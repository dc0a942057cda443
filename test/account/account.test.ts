// §2 The account page: change password (other sessions end, this one stays), the list of
// sessions (ending any of them, or all, after typing the password again), and deleting the
// account with its sessions, secrets and unsent mail. JSON equivalents for each.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/accounts/password.ts';
import { hashSessionId, publicSessionId } from '../../src/accounts/session.ts';
import { enqueueEmail } from '../../src/mail/outbox.ts';
import { address, cookieHeader, getPage, type Jar, postForm } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';
import {
  api,
  lastMailId,
  logIn,
  mailAfter,
  me,
  NEW_PASSWORD,
  PASSWORD,
  postAccount,
  sessionCount,
  signUp,
  templateOf,
  userRow,
} from './helpers.ts';

let rt: TestRuntime;

beforeAll(async () => {
  rt = await createTestRuntime();
});
afterAll(async () => {
  await rt.close();
});
beforeEach(() => {
  rt.limits.reset();
});

async function account(label: string): Promise<{ email: string; jar: Jar; userId: string }> {
  const email = address(label);
  await signUp(rt, email);
  const jar = await logIn(rt, email);
  const user = await userRow(rt, email);
  return { email, jar, userId: user?.id ?? '' };
}

describe('the account page', () => {
  it('sends a visitor without a session to log in', async () => {
    const res = await getPage(rt, '/account');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login');
    const post = await postForm(rt, '/account', { intent: 'delete_account' }, {});
    expect(post.statusCode).toBe(403);
  });

  it('lists the sessions, newest first, with this one marked, and offers every form', async () => {
    const { email, jar } = await account('page');
    rt.clock.advance(60_000);
    const other = await logIn(rt, email);
    const page = await getPage(rt, '/account', jar);
    expect(page.statusCode).toBe(200);
    const ids = [...page.body.matchAll(/name="session" value="([0-9a-f]{16})"/g)].map((m) => m[1]);
    expect(ids).toEqual([
      publicSessionId(hashSessionId(other.mp_session ?? '')),
      publicSessionId(hashSessionId(jar.mp_session ?? '')),
    ]);
    expect(page.body.match(/\(this device\)/g)).toHaveLength(1);
    // Log out is at hand on every page of a logged-in user (ASVS 7.4.4).
    expect(page.body).toContain('action="/logout"');
    expect(page.body.indexOf('(this device)')).toBeGreaterThan(page.body.indexOf(ids[1] ?? ''));
    for (const intent of [
      'change_password',
      'change_email',
      'end_sessions',
      'logout_everywhere',
      'delete_account',
    ]) {
      expect(page.body).toContain(`value="${intent}"`);
    }
    // Every field has its own id and label, though several forms ask for the password.
    const fieldIds = [...page.body.matchAll(/<input[^>]* id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(fieldIds).size).toBe(fieldIds.length);
    for (const id of fieldIds) expect(page.body).toContain(`for="${id}"`);
  });

  it('notes when a session was last active, a few minutes at a time', async () => {
    const { jar } = await account('lastseen');
    const created = rt.clock.now();
    rt.clock.advance(6 * 60_000);
    await me(rt, jar);
    const res = await api(rt, 'GET', '/api/sessions', jar);
    expect(res.statusCode).toBe(200);
    const [session] = res.json().sessions;
    expect(session).toMatchObject({
      createdAt: new Date(created).toISOString(),
      lastSeenAt: new Date(created + 6 * 60_000).toISOString(),
      current: true,
    });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('answers an unknown intent with 400', async () => {
    const { jar } = await account('intent');
    const res = await postAccount(rt, jar, { intent: 'make_me_admin' });
    expect(res.statusCode).toBe(400);
  });
});

describe('changing the password', () => {
  it('needs the current one; other sessions end, this one stays under a new id', async () => {
    const { email, jar, userId } = await account('change');
    const other = await logIn(rt, email);
    const before = jar.mp_session;

    const wrong = await postAccount(rt, jar, {
      intent: 'change_password',
      currentPassword: 'not the current one',
      newPassword: NEW_PASSWORD,
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('id="field-pw-current-error"');
    expect(await sessionCount(rt, userId)).toBe(2);

    const since = await lastMailId(rt, email);
    const res = await postAccount(rt, jar, {
      intent: 'change_password',
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/account');
    expect(jar.mp_session).toBeDefined();
    expect(jar.mp_session).not.toBe(before);
    expect((await me(rt, jar)).statusCode).toBe(200);
    expect((await me(rt, { mp_session: before ?? '' })).statusCode).toBe(401);
    expect((await me(rt, other)).statusCode).toBe(401);
    expect(await sessionCount(rt, userId)).toBe(1);
    expect(
      await verifyPassword((await userRow(rt, email))?.password_hash ?? '', NEW_PASSWORD),
    ).toBe(true);
    const notice = await mailAfter(rt, email, since);
    expect(templateOf(notice)).toBe('password-changed');
  });

  it('checks the new password like sign-up does', async () => {
    const { email, jar } = await account('weaknew');
    for (const newPassword of ['short', email, '1qaz2wsx3edc4rfv']) {
      const res = await postAccount(rt, jar, {
        intent: 'change_password',
        currentPassword: PASSWORD,
        newPassword,
      });
      expect(res.statusCode).toBe(400);
      expect(res.body).toContain('id="field-pw-new-error"');
    }
  });

  it('works through POST /api/password/change', async () => {
    const { email, jar } = await account('apichange');
    const other = await logIn(rt, email);
    const wrong = await api(rt, 'POST', '/api/password/change', jar, {
      currentPassword: 'wrong wrong wrong',
      newPassword: NEW_PASSWORD,
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({
      error: { code: 'current_password_invalid', field: 'currentPassword' },
    });
    const res = await api(rt, 'POST', '/api/password/change', jar, {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'password_changed' });
    const fresh = res.cookies.find((c) => c.name === 'mp_session')?.value ?? '';
    expect((await me(rt, { mp_session: fresh })).statusCode).toBe(200);
    expect((await me(rt, other)).statusCode).toBe(401);
    expect(
      (
        await api(
          rt,
          'POST',
          '/api/password/change',
          {},
          {
            currentPassword: PASSWORD,
            newPassword: NEW_PASSWORD,
          },
        )
      ).statusCode,
    ).toBe(401);
  });
});

describe('ending sessions', () => {
  it('logs out everywhere, this session included, after the password is typed again', async () => {
    const { email, jar, userId } = await account('everywhere');
    await logIn(rt, email);
    const refused = await postAccount(rt, jar, {
      intent: 'logout_everywhere',
      password: 'nope nope',
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('id="field-sessions-password-error"');
    expect(await sessionCount(rt, userId)).toBe(2);

    const res = await postAccount(rt, jar, { intent: 'logout_everywhere', password: PASSWORD });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login');
    expect(jar.mp_session).toBeUndefined();
    expect(await sessionCount(rt, userId)).toBe(0);
  });

  it('ends the chosen sessions and keeps this one (under a new id)', async () => {
    const { email, jar, userId } = await account('chosen');
    const a = await logIn(rt, email);
    const b = await logIn(rt, email);
    const none = await postAccount(rt, jar, { intent: 'end_sessions', password: PASSWORD });
    expect(none.statusCode).toBe(400);
    expect(none.body).toContain('Choose at least one session');
    // The error is tied to the group, and the summary's link lands on a box that takes focus.
    expect(none.body).toMatch(/<fieldset[^>]*aria-describedby="field-sessions-select-error"/);
    expect(none.body).toMatch(/<p class="error" id="field-sessions-select-error">Choose at least/);
    expect(none.body).toContain('href="#field-sessions-select"');
    expect(none.body).toMatch(
      /<input[^>]*type="checkbox"[^>]*id="field-sessions-select"[^>]*aria-invalid="true"/,
    );

    const res = await postAccount(rt, jar, {
      intent: 'end_sessions',
      password: PASSWORD,
      session: [publicSessionId(hashSessionId(a.mp_session ?? '')), 'ffffffffffffffff', '<x>'],
    });
    expect(res.statusCode).toBe(303);
    expect((await me(rt, a)).statusCode).toBe(401);
    expect((await me(rt, b)).statusCode).toBe(200);
    expect((await me(rt, jar)).statusCode).toBe(200);
    expect(await sessionCount(rt, userId)).toBe(2);
    const page = await getPage(rt, '/account', jar);
    expect(page.body).toContain('One session was logged out.');
  });

  it('through the API: GET /api/sessions, POST /api/sessions/end and /api/logout/everywhere', async () => {
    const { email, jar, userId } = await account('apisessions');
    const other = await logIn(rt, email);
    const list = await api(rt, 'GET', '/api/sessions', jar);
    const sessions = list.json().sessions as Array<{ id: string; current: boolean }>;
    expect(sessions).toHaveLength(2);
    const otherId = sessions.find((s) => !s.current)?.id;
    const ended = await api(rt, 'POST', '/api/sessions/end', jar, {
      password: PASSWORD,
      ids: [otherId],
    });
    expect(ended.json()).toEqual({ status: 'logged_out', count: 1 });
    expect((await me(rt, other)).statusCode).toBe(401);
    const rotated = ended.cookies.find((c) => c.name === 'mp_session')?.value ?? '';
    const current = { mp_session: rotated };

    const wrong = await api(rt, 'POST', '/api/logout/everywhere', current, { password: 'no' });
    expect(wrong.json()).toMatchObject({ error: { code: 'current_password_invalid' } });
    const all = await api(rt, 'POST', '/api/logout/everywhere', current, { password: PASSWORD });
    expect(all.json()).toEqual({ status: 'logged_out', count: 1 });
    expect(await sessionCount(rt, userId)).toBe(0);
    expect((await api(rt, 'GET', '/api/sessions', current)).statusCode).toBe(401);
  });
});

describe('deleting the account', () => {
  it('needs the password; removes the account, its sessions, secrets and unsent mail', async () => {
    const { email, jar, userId } = await account('delete');
    await logIn(rt, email);
    await api(rt, 'POST', '/api/password/forgot', {}, { email });
    // Mail still waiting for it, and for someone else, in the outbox.
    const now = rt.clock.now();
    const waiting = { flow: 'test', now, random: rt.ctx.random, messageIdDomain: 'mailproof.test' };
    const someoneElse = address('bystander');
    await rt.db.kysely.transaction().execute(async (trx) => {
      await enqueueEmail(trx, {
        ...waiting,
        to: email.toUpperCase(),
        template: 'signup-existing',
        data: { loginUrl: 'http://mailproof.test/login' },
      });
      await enqueueEmail(trx, {
        ...waiting,
        to: someoneElse,
        template: 'signup-existing',
        data: { loginUrl: 'http://mailproof.test/login' },
      });
      // Not yet due, so the worker leaves them pending.
      await trx
        .updateTable('outbox')
        .set({ next_attempt_at: now + 3_600_000 })
        .where('flow', '=', 'test')
        .execute();
    });

    const refused = await postAccount(rt, jar, { intent: 'delete_account', password: 'nope' });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('id="field-delete-password-error"');
    expect(await userRow(rt, email)).toBeDefined();

    const res = await postAccount(rt, jar, { intent: 'delete_account', password: PASSWORD });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/');
    expect(jar.mp_session).toBeUndefined();
    expect(await userRow(rt, email)).toBeUndefined();
    expect(await sessionCount(rt, userId)).toBe(0);
    const secrets = await rt.db.kysely
      .selectFrom('verifications')
      .select('id')
      .where('user_id', '=', userId)
      .execute();
    expect(secrets).toHaveLength(0);
    const pending = await rt.db.kysely
      .selectFrom('outbox')
      .select('to_address')
      .where('status', '=', 'pending')
      .where('flow', '=', 'test')
      .execute();
    expect(pending.map((r) => r.to_address)).toEqual([someoneElse]);
    await rt.db.kysely.deleteFrom('outbox').where('flow', '=', 'test').execute();

    // The address is free again, and the old session is worth nothing.
    expect((await me(rt, jar)).statusCode).toBe(401);
    const login = await api(rt, 'POST', '/api/login', {}, { email, password: PASSWORD });
    expect(login.statusCode).toBe(401);
    const home = await rt.app.inject({ url: '/', headers: { cookie: cookieHeader(jar) } });
    expect(home.body).toContain('Your account has been deleted.');
  });

  it('through POST /api/account/delete', async () => {
    const { email, jar } = await account('apidelete');
    const wrong = await api(rt, 'POST', '/api/account/delete', jar, { password: 'nope' });
    expect(wrong.statusCode).toBe(400);
    const res = await api(rt, 'POST', '/api/account/delete', jar, { password: PASSWORD });
    expect(res.json()).toEqual({ status: 'deleted' });
    expect(await userRow(rt, email)).toBeUndefined();
    expect(
      (await api(rt, 'POST', '/api/account/delete', jar, { password: PASSWORD })).statusCode,
    ).toBe(401);
  });
});
