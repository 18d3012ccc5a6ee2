import pkg from '../package.json' with { type: 'json' };

/** The package version: what the image is tagged with, `--version` prints and the controller logs at start. */
export const VERSION: string = pkg.version;
