// The peer for `make bench`: node oidc-provider, one process, in memory, one confidential
// client with client_credentials, ES256 JWT access tokens through a resource indicator.
// Introspection is measured on an opaque token (resource urn:bench:opaque).
// Usage: node peer.mjs PORT CLIENT_ID CLIENT_SECRET   (prints "ready" when it listens)
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret] = process.argv.slice(2);
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const resource = 'urn:bench:api';
const opaque = 'urn:bench:opaque';

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId, client_secret: clientSecret, grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [{ ...ec, kid: 'ec1', alg: 'ES256', use: 'sig' }, { ...rsa, kid: 'rsa1', alg: 'RS256', use: 'sig' }] },
  scopes: ['api'],
  ttl: { ClientCredentials: 3600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      // JWT access tokens cannot be introspected by oidc-provider: the introspection
      // scenario asks for this second resource, whose tokens are opaque (stored in memory).
      getResourceServerInfo: (ctx, indicator) => (indicator === opaque
        ? { scope: 'api', audience: opaque, accessTokenFormat: 'opaque', accessTokenTTL: 3600 }
        : { scope: 'api', audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: 3600,
          jwt: { sign: { alg: 'ES256' } } }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log('ready'));
