/**
 * Refuses requests that come from web pages. The docker CLI and the SDKs never send Origin,
 * Referer or Sec-Fetch-* headers; browsers send them on cross-site requests (and Sec-Fetch-* on
 * nearly every request), and a page can reach 127.0.0.1 with "simple" POSTs or, by DNS
 * rebinding, read answers. The Host check closes the rebinding case for browsers that send no
 * Sec-Fetch-*: a rebinding page has to use a DNS name of its own in Host, while docker clients
 * use an IP literal, localhost, or api.moby.localhost (unix sockets).
 */
import { isIP } from 'node:net';

export interface GuardPolicy {
  /** Skip the Host check (clients are authenticated by certificate). */
  trustAnyHost: boolean;
  allowedHostNames: ReadonlySet<string>;
}

/**
 * A message saying why the request is refused, or undefined to let it through. Works on the raw
 * header list (every request passes here; building Node's header object costs time).
 */
export function refusalReason(rawHeaders: readonly string[], policy: GuardPolicy): string | undefined {
  let browserHeaders: string[] | undefined;
  let host: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (name === 'host') {
      host ??= rawHeaders[i + 1];
    } else if (name === 'origin' || name === 'referer' || name.startsWith('sec-fetch-')) {
      (browserHeaders ??= []).push(name);
    }
  }
  if (browserHeaders) {
    return `the Calico Docker API proxy refuses requests from web browsers (this one carries ${browserHeaders.join(', ')}): `
      + 'the Docker API gives root on this machine, so it is served to docker clients only';
  }
  if (!policy.trustAnyHost && host !== undefined && !hostAllowed(host, policy.allowedHostNames)) {
    return `the Calico Docker API proxy refuses Host ${JSON.stringify(host)}: use DOCKER_HOST=tcp://127.0.0.1:PORT `
      + '(an IP address or localhost), or add the name to the proxy\'s allowed host names';
  }
  return undefined;
}

function hostAllowed(hostHeader: string, allowed: ReadonlySet<string>): boolean {
  const name = stripPort(hostHeader.trim()).toLowerCase();
  if (name === '' || isIP(name) !== 0) return true;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  return allowed.has(name);
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(1, end);
  }
  const colon = host.lastIndexOf(':');
  // More than one colon without brackets: a bare IPv6 literal, no port.
  if (colon !== -1 && host.indexOf(':') === colon) return host.slice(0, colon);
  return host;
}
