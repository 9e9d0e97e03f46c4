// A relying party built with openid-client, a certified OpenID Connect library, as its
// documentation shows it: discovery, the authorization code flow with PKCE (S256), state and
// nonce, client_secret_basic, the ID token's checks, userinfo, a refresh, and the RP-initiated
// logout URL. It has no web server: test_openid_client.py runs it, reads its lines on stdout
// (one JSON object each) and answers on stdin with the URL the browser was sent back to.
//
//   node rp.mjs ISSUER CLIENT_ID REDIRECT_URI POST_LOGOUT_REDIRECT_URI   (the secret on stdin)
//
// The issuer's certificate is checked against NODE_EXTRA_CA_CERTS.

import * as client from 'openid-client';
import readline from 'node:readline';

const [issuer, clientId, redirectUri, postLogoutRedirectUri] = process.argv.slice(2);
const input = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const read = async () => (await input.next()).value;
const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

try {
  const secret = await read();
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    undefined,
    client.ClientSecretBasic(secret),
  );
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  say({ authorization_url: authorizationUrl.href });

  const tokens = await client.authorizationCodeGrant(config, new URL(await read()), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const again = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token ?? tokens.id_token,
    post_logout_redirect_uri: postLogoutRedirectUri,
    state: 'signed-out',
  });
  say({
    claims,
    userinfo,
    token_type: tokens.token_type,
    refreshed: {
      rotated: refreshed.refresh_token !== undefined && refreshed.refresh_token !== tokens.refresh_token,
      id_token_claims: refreshed.id_token ? refreshed.claims() : null,
      userinfo_sub: again.sub,
    },
    end_session_url: endSession.href,
  });
} catch (error) {
  say({ error: `${error.name}: ${error.message}`, code: error.code ?? null, cause: `${error.cause ?? ''}` });
  process.exitCode = 1;
}
