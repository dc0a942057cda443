// ASVS 6.1.2 / 6.2.11: the documented context-specific words (the service's name, the address,
// its local part and domain name) cannot make up a password, with digits and symbols or not.
import { describe, expect, it } from 'vitest';
import { checkNewPassword, contextWords } from '../../src/accounts/password.ts';

const options = { minLength: 15, email: 'Alice.Smith@Example.org', appName: 'Acme Portal' };

describe('context-specific words', () => {
  it('are the app name (and Mailproof), the address, its local part and its domain name', () => {
    expect(contextWords(options)).toEqual([
      'mailproof',
      'acmeportal',
      'alicesmithexampleorg',
      'alicesmith',
      'example',
    ]);
  });

  it('refuse passwords made of one of them plus digits and symbols', () => {
    for (const password of [
      'Mailproof-2024-!!!',
      'acme portal 1234567',
      'alice.smith@example.org',
      'AliceSmith1234567!',
      'example!!!!!!!!!!!!!!',
    ]) {
      expect(checkNewPassword(password, options)?.code, password).toBe('password_common');
    }
  });

  it('allow passwords that only contain one among other words', () => {
    for (const password of ['alice likes green tea', 'mailproof keeps my lantern lit']) {
      expect(checkNewPassword(password, options), password).toBeNull();
    }
  });
});
