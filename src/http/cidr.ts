import ipaddr from 'ipaddr.js'

// Address ranges of a token's `ip` policy (docs/contract.md §3.1, §3.2 check
// 4), parsed and matched with ipaddr.js. Only the forms people write are
// accepted: dotted-quad IPv4 (not ipaddr's legacy `0x1.2.3.4` or `1.2.3`)
// and IPv6 in any RFC 4291 spelling.

/** The most ranges one token may carry. */
export const MAX_RANGES = 8

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number]

/** An address as people write it, or null: dotted-quad IPv4 or IPv6 (a zone index is not an address here). */
function address(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
	if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text)
	if (text.includes(':') && !text.includes('%') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text)
	return null
}

/**
 * Parses `10.0.0.0/8,2001:db8::/32,192.0.2.7` into canonical CIDR strings (a
 * bare address is one host: /32 or /128; host bits are cleared, so
 * `10.1.2.3/8` is `10.0.0.0/8`). Returns the reason when it is not one.
 */
export function parseRanges(text: string): { ranges: string[] } | { problem: string } {
	const parts = text.split(',').map((p) => p.trim())
	if (parts.some((p) => p === '')) return { problem: 'ip must be a comma-separated list of addresses or CIDR ranges' }
	if (parts.length > MAX_RANGES) return { problem: `ip takes at most ${MAX_RANGES} ranges, got ${parts.length}` }
	const ranges: string[] = []
	for (const part of parts) {
		const slash = part.indexOf('/')
		const host = address(slash < 0 ? part : part.slice(0, slash))
		if (host === null) return { problem: `ip: ${JSON.stringify(part.slice(0, 64))} is not an IPv4 or IPv6 address` }
		const max = host.kind() === 'ipv4' ? 32 : 128
		const prefixText = slash < 0 ? String(max) : part.slice(slash + 1)
		const prefix = /^(0|[1-9][0-9]{0,2})$/.test(prefixText) ? Number(prefixText) : Number.NaN
		if (!(prefix >= 0 && prefix <= max))
			return {
				problem: `ip: ${JSON.stringify(part.slice(0, 64))} has a bad prefix length (0-${max} for IPv${max === 32 ? 4 : 6})`,
			}
		const network =
			host.kind() === 'ipv4'
				? ipaddr.IPv4.networkAddressFromCIDR(`${host.toString()}/${prefix}`)
				: ipaddr.IPv6.networkAddressFromCIDR(`${host.toString()}/${prefix}`)
		const canonical = `${network.toString()}/${prefix}`
		if (!ranges.includes(canonical)) ranges.push(canonical)
	}
	return { ranges }
}

/**
 * A matcher for canonical ranges (as `parseRanges` returns them): true when
 * `client` lies inside one. IPv4-mapped IPv6 clients (`::ffff:10.1.2.3`, as a
 * dual-stack socket reports IPv4 peers) match IPv4 ranges; anything that is
 * not an address (`unknown`, a forged header value) matches nothing.
 */
export function rangeMatcher(canonical: readonly string[]): (client: string) => boolean {
	const ranges: Range[] = canonical.map((c) => ipaddr.parseCIDR(c))
	return (client) => {
		const raw = address(client.trim())
		if (raw === null) return false
		const unmapped =
			raw.kind() === 'ipv6' && (raw as ipaddr.IPv6).isIPv4MappedAddress() ? (raw as ipaddr.IPv6).toIPv4Address() : raw
		return ranges.some(
			([base, bits]) =>
				(unmapped.kind() === base.kind() && unmapped.match(base, bits)) ||
				(raw.kind() === base.kind() && raw.match(base, bits)),
		)
	}
}
