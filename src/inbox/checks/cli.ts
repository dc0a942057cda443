// `mailproof check-emails` (npm run check:emails): every template with its sample data must pass
// the inbox's checks and the bar of SPEC §4, or the command exits 1. CI runs it.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config } from '../../config.ts';
import { createLogger } from '../../logger.ts';
import { createRuntime } from '../../runtime.ts';
import { createRouteTable } from './index.ts';
import { type AnyTemplate, checkTemplate, shippedTemplates } from './templates.ts';

export async function checkEmailsCommand(config: Config, args: string[]): Promise<number> {
  const extra: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--template' && args[i + 1]) extra.push(args[++i] as string);
    else {
      console.error(`check-emails: unknown argument "${args[i]}" (use --template FILE)`);
      return 2;
    }
  }
  if (process.env.CI && !config.inbox.spamd) {
    console.error('check-emails: SPAMD_HOST must be set in CI: the spam score is part of the bar.');
    return 2;
  }
  // The app's routes, for resolving links into it: the web app is built (not started) on a
  // throwaway in-memory database.
  const routes = createRouteTable();
  const runtime = await createRuntime(
    { ...config, databaseUrl: 'sqlite::memory:', inbox: { ...config.inbox, enabled: false } },
    {
      worker: false,
      routes,
      log: createLogger({ logLevel: 'error' }),
      // Nothing is sent: the templates are composed and checked, never handed to a transport.
      transport: {
        name: 'none',
        send: () => Promise.reject(new Error('check-emails sends nothing')),
        close: () => Promise.resolve(),
      },
    },
  );
  try {
    await runtime.app.ready();
    const templates = [...shippedTemplates(), ...(await loadTemplates(extra))];
    const options = { baseUrl: config.baseUrl, routes, spamd: config.inbox.spamd };
    let failed = 0;
    for (const template of templates) {
      const result = await checkTemplate(template, runtime.ctx.branding, config, options);
      const spam =
        result.checks.spam.status === 'scored'
          ? `spam ${result.checks.spam.score}`
          : result.checks.spam.status === 'failed'
            ? 'spam check failed'
            : 'spam not checked (SPAMD_HOST unset)';
      const size = `${(Buffer.byteLength(result.html) / 1024).toFixed(1)} KB`;
      const summary = `${result.name}: ${result.checks.css?.score ?? 100}% of clients, ${size}, ${spam}, ${result.checks.warnings} warning(s)`;
      if (result.failures.length === 0) {
        console.log(`ok    ${summary}`);
      } else {
        failed++;
        console.log(`FAIL  ${summary}`);
        for (const failure of result.failures) console.log(`      - ${failure}`);
      }
    }
    console.log(
      failed
        ? `\n${failed} of ${templates.length} templates fail the checks.`
        : `\nAll ${templates.length} templates pass the checks.`,
    );
    return failed ? 1 : 0;
  } finally {
    await runtime.close();
  }
}

/** Templates from a module of the deployer's (each export that looks like a template). */
async function loadTemplates(files: string[]): Promise<AnyTemplate[]> {
  const found: AnyTemplate[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(path.resolve(file)).href)) as Record<
      string,
      unknown
    >;
    for (const value of Object.values(module)) {
      if (isTemplate(value)) found.push(value);
    }
  }
  return found;
}

function isTemplate(value: unknown): value is AnyTemplate {
  const t = value as Partial<AnyTemplate> | null;
  return (
    typeof t === 'object' &&
    t !== null &&
    typeof t.name === 'string' &&
    typeof t.subject === 'function' &&
    typeof t.body === 'function' &&
    typeof t.sample === 'function'
  );
}
