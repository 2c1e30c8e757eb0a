/**
 * @module cli/run
 * Runs the `chassis` command with this process's arguments and exits with its
 * status: bin/chassis.js runs this module when dist/bundle/ is older than dist/.
 * The bundled runtime's cli.mjs (dist/bundle/ and built images) does the same
 * through the bundle (build/image/runtime-package.ts).
 */
import { runCommand } from "./main.js";

await runCommand(process.argv.slice(2));
