// A real OpenID Connect provider (panva/node-oidc-provider, OpenID certified) for server/tests/oidc.rs.
//
// One confidential client (OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI), PKCE required, the
// development login and consent pages (any login name signs in as that account id; the test uses
// "alice"), and one account with email and profile claims. Listens on 127.0.0.1, on the port given as
// the first argument or PORT (0, the default, picks a free one), and prints `listening on <issuer>`
// once discovery answers.
import { createServer } from 'node:http';

import { Provider } from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
};

const accounts = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    preferred_username: 'alice',
    name: 'Alice Liddell',
  },
};

const server = createServer();
server.listen(Number(process.argv[2] ?? process.env.PORT ?? 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: env('OIDC_CLIENT_ID'),
      client_secret: env('OIDC_CLIENT_SECRET'),
      redirect_uris: [env('OIDC_REDIRECT_URI')],
    }],
    pkce: { required: () => true },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      const claims = accounts[id] ?? {};
      return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
    },
  });
  server.on('request', provider.callback());
  console.log(`listening on ${issuer}`);
});
