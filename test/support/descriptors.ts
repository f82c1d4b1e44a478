import { readdirSync, readlinkSync, realpathSync } from 'node:fs'

/**
 * The targets of this process's open file descriptors that are `path` or lie
 * inside it (Linux /proc): symlinks in `path` resolved, a descriptor of a file
 * deleted since it was opened included. Tests compare it before and after.
 */
export function openDescriptors(path: string): string[] {
	let resolved = path
	try {
		resolved = realpathSync(path)
	} catch {
		// Gone already: its open descriptors still name it.
	}
	const out: string[] = []
	for (const fd of readdirSync('/proc/self/fd')) {
		try {
			const target = readlinkSync(`/proc/self/fd/${fd}`)
			if (target === resolved || target === `${resolved} (deleted)` || target.startsWith(`${resolved}/`))
				out.push(target)
		} catch {
			// The descriptor closed between the listing and the readlink.
		}
	}
	return out
}
