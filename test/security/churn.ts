import { appendFileSync, linkSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

// A child process that changes files under the server as fast as it can, so
// the race is real (another core) and not interleaved by the test's own event
// loop. It runs for a fixed time and prints what it did as JSON.
//
//   bun churn.ts swap <path> <hardlink-of-real-file> <outside-target> <scratch-dir> <ms>
//     renames a symlink to <outside-target> over <path>, then the real file back, in a loop;
//     always leaves the real file in place.
//   bun churn.ts append <ms> <max-bytes> <path>...
//     appends the byte pattern to each file (1 KiB per file per millisecond) up to <max-bytes>.
//   bun churn.ts flicker <path> <size> <ms>
//     deletes the file and puts it back whole (a new inode, the same pattern) in a loop; ends deleted.

/** Byte `i` of a patterned file (the same function as the tests', so any slice can be checked). */
export const patternByte = (i: number) => (i * 31 + 7) % 251

/** `length` bytes of the pattern starting at offset `from`. */
export function patternBytes(from: number, length: number): Uint8Array<ArrayBuffer> {
	const out = new Uint8Array(length)
	for (let i = 0; i < length; i++) out[i] = patternByte(from + i)
	return out
}

function swap(path: string, realLink: string, outside: string, scratch: string, ms: number): number {
	const tmpLink = join(scratch, 'swap-link')
	const tmpReal = join(scratch, 'swap-real')
	const until = performance.now() + ms
	let swaps = 0
	try {
		while (performance.now() < until) {
			symlinkSync(outside, tmpLink)
			renameSync(tmpLink, path)
			linkSync(realLink, tmpReal)
			renameSync(tmpReal, path)
			swaps++
		}
	} finally {
		// Whatever happened, the real file ends up in place and nothing is left behind.
		for (const stray of [tmpLink, tmpReal])
			try {
				unlinkSync(stray)
			} catch {}
		linkSync(realLink, tmpReal)
		renameSync(tmpReal, path)
	}
	return swaps
}

function append(ms: number, maxBytes: number, paths: string[]): number {
	const until = performance.now() + ms
	let appended = 0
	while (performance.now() < until) {
		let grew = false
		for (const path of paths) {
			const size = statSync(path).size
			if (size >= maxBytes) continue
			appendFileSync(path, patternBytes(size, 1024))
			appended += 1024
			grew = true
		}
		if (!grew) break
		Bun.sleepSync(1)
	}
	return appended
}

function flicker(path: string, size: number, ms: number): number {
	const content = patternBytes(0, size)
	const until = performance.now() + ms
	let deletions = 0
	while (performance.now() < until) {
		unlinkSync(path)
		deletions++
		Bun.sleepSync(1)
		// Written aside and renamed in, so the file is never seen half-written (that would be a legitimately shorter file).
		writeFileSync(`${path}.next`, content)
		renameSync(`${path}.next`, path)
		Bun.sleepSync(1)
	}
	unlinkSync(path)
	return deletions + 1
}

if (import.meta.main) {
	const [mode, ...args] = process.argv.slice(2)
	if (mode === 'swap') {
		const [path = '', realLink = '', outside = '', scratch = '', ms = '0'] = args
		console.log(JSON.stringify({ swaps: swap(path, realLink, outside, scratch, Number(ms)) }))
	} else if (mode === 'append') {
		const [ms = '0', maxBytes = '0', ...paths] = args
		console.log(JSON.stringify({ appended: append(Number(ms), Number(maxBytes), paths) }))
	} else if (mode === 'flicker') {
		const [path = '', size = '0', ms = '0'] = args
		console.log(JSON.stringify({ deletions: flicker(path, Number(size), Number(ms)) }))
	} else {
		console.error(`unknown mode ${mode}`)
		process.exit(2)
	}
}
