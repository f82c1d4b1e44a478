import {
	closeSync,
	constants,
	existsSync,
	fstatSync,
	lstatSync,
	openSync,
	read,
	readlinkSync,
	type Stats,
	statSync,
} from 'node:fs'

/** The file-system calls storage makes, injectable so tests can swap files between them. */
export interface FileSystem {
	/** lstat; null when nothing is there. */
	lstat(path: string): Stats | null
	/** stat (following links); null when nothing is there. */
	stat(path: string): Stats | null
	/** Opens `path` for inspection only (Linux `O_PATH`: no read, no device side effects, FIFOs do not block). */
	openPath(path: string): number
	/** Opens a readable descriptor on the file behind `fd`. */
	openReadable(fd: number): number
	fstat(fd: number): Stats
	/** The real path the kernel holds for `fd`, or null when it cannot say. */
	pathOf(fd: number): string | null
	read(fd: number, buffer: Uint8Array, length: number, position: number): Promise<number>
	close(fd: number): void
}

const O_PATH = 0o10000000 // Linux; node:fs does not export it
const PROC_FD = '/proc/self/fd'

/** The real file system (Linux: `O_PATH` and `/proc/self/fd`; elsewhere a read-only open and `realpath`). */
export function nodeFileSystem(): FileSystem {
	const linux = process.platform === 'linux' && existsSync(PROC_FD)
	return {
		lstat: (path) => lstatSync(path, { throwIfNoEntry: false }) ?? null,
		stat: (path) => statSync(path, { throwIfNoEntry: false }) ?? null,
		openPath: (path) => openSync(path, linux ? O_PATH : constants.O_RDONLY | constants.O_NONBLOCK),
		openReadable: (fd) => (linux ? openSync(`${PROC_FD}/${fd}`, 'r') : fd),
		fstat: (fd) => fstatSync(fd),
		pathOf: (fd) => (linux ? readlinkSync(`${PROC_FD}/${fd}`) : null),
		read: (fd, buffer, length, position) =>
			new Promise((resolve, reject) =>
				read(fd, buffer, 0, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))),
			),
		close: (fd) => closeSync(fd),
	}
}
