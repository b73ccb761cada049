import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { CrawlError } from './errors';

/**
 * SSRF guard. Only globally routable unicast addresses may be fetched: loopback, private (RFC 1918), link-local
 * (incl. the cloud metadata address 169.254.169.254), unique-local IPv6 (incl. fd00:ec2::254), CGNAT
 * (100.64/10), multicast, broadcast, unspecified, reserved, benchmarking, documentation and translation ranges
 * (NAT64, 6to4, Teredo — they can tunnel to internal IPv4) are refused, unless an allow-list entry (IP or CIDR)
 * names them. IPv4-mapped IPv6 (::ffff:127.0.0.1) is judged as the IPv4 it carries.
 *
 * The check runs where the connection is made: `guardedLookup` resolves the name, checks *every* address and
 * hands only checked addresses to the socket, so a DNS answer cannot change between check and connect (DNS
 * rebinding). Literal IP hosts skip DNS, so the fetcher checks those itself before each request and each redirect.
 */

export interface SsrfOptions {
  /** IPs or CIDRs that may be fetched even though they are not public, e.g. ['127.0.0.1'] for a test server. */
  allow?: readonly string[];
}

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;

export class SsrfPolicy {
  private readonly allowList: [Parsed, number][];

  constructor(options: SsrfOptions = {}) {
    this.allowList = (options.allow ?? []).map((entry) => {
      if (entry.includes('/')) return ipaddr.parseCIDR(entry);
      const ip = ipaddr.process(entry);
      return [ip, ip.kind() === 'ipv4' ? 32 : 128];
    });
  }

  /** The range name of an address and whether it may be fetched. */
  check(address: string): { allowed: boolean; range: string } {
    let ip: Parsed;
    try {
      ip = ipaddr.process(address.replace(/^\[|\]$/g, ''));
    } catch {
      return { allowed: false, range: 'invalid' };
    }
    const range = ip.range();
    if (range === 'unicast') return { allowed: true, range };
    const listed = this.allowList.some(([net, bits]) => net.kind() === ip.kind() && ip.match([net, bits] as never));
    return { allowed: listed, range };
  }

  /** Throws CrawlError('blocked') unless the address may be fetched. */
  assertAllowed(address: string, host: string, url?: string): void {
    const { allowed, range } = this.check(address);
    if (!allowed) {
      throw new CrawlError(
        'blocked',
        `refused to connect to ${host} (${address}, ${range} address): blocked by the SSRF guard`,
        {
          ...(url ? { url } : {}),
          data: { host, address, range },
        },
      );
    }
  }

  /** `lookup` for net/tls/undici connect options: resolve, check every address, return only checked ones. */
  readonly guardedLookup = (
    hostname: string,
    options: LookupOneOptions | LookupAllOptions | number | undefined,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    const rawFamily = typeof options === 'number' ? options : options?.family;
    const opts = {
      family: rawFamily === 'IPv4' ? 4 : rawFamily === 'IPv6' ? 6 : rawFamily,
      all: typeof options === 'object' && options.all === true,
    };
    if (isIP(hostname)) {
      try {
        this.assertAllowed(hostname, hostname);
      } catch (err) {
        callback(err as NodeJS.ErrnoException, '');
        return;
      }
      const family = isIP(hostname);
      if (opts.all) callback(null, [{ address: hostname, family }]);
      else callback(null, hostname, family);
      return;
    }
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) {
        callback(err, '');
        return;
      }
      try {
        if (!addresses.length) throw Object.assign(new Error(`no addresses for ${hostname}`), { code: 'ENOTFOUND' });
        for (const a of addresses) this.assertAllowed(a.address, hostname);
      } catch (e) {
        callback(e as NodeJS.ErrnoException, '');
        return;
      }
      const wanted =
        opts.family === 4 || opts.family === 6 ? addresses.filter((a) => a.family === opts.family) : addresses;
      const list = wanted.length ? wanted : addresses;
      if (opts.all) callback(null, list);
      else callback(null, list[0]!.address, list[0]!.family);
    });
  };

  /** Resolves a host name and checks every address (used before running `git` against a host). */
  async resolveAndCheck(hostname: string, url?: string): Promise<string[]> {
    const host = hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      this.assertAllowed(host, host, url);
      return [host];
    }
    const addresses = await new Promise<LookupAddress[]>((resolve, reject) => {
      dnsLookup(host, { all: true, verbatim: true }, (err, res) => (err ? reject(err) : resolve(res)));
    }).catch((err: NodeJS.ErrnoException) => {
      throw new CrawlError('network', `DNS lookup failed for ${host}: ${err.code ?? err.message}`, {
        ...(url ? { url } : {}),
        cause: err,
      });
    });
    for (const a of addresses) this.assertAllowed(a.address, host, url);
    return addresses.map((a) => a.address);
  }
}
