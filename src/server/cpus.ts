/**
 * @module server/cpus
 * How many CPUs `--workers auto` means. Apart from server/workers so that
 * resolving the configuration does not load node:cluster.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/**
 * CPUs this process may use: the smaller of the CPUs it may run on and the
 * cgroup's CPU quota (a container limited to 1.5 CPUs on a 16-core host gets 2).
 */
export function usableCpus(readFile: (path: string) => string = (path) => readFileSync(path, "utf8")): number {
  let quota = Number.POSITIVE_INFINITY;
  const tryRead = (path: string) => {
    try {
      return readFile(path).trim();
    } catch {
      return undefined;
    }
  };
  const v2 = tryRead("/sys/fs/cgroup/cpu.max"); // "max 100000" or "150000 100000"
  if (v2) {
    const [limit, period] = v2.split(/\s+/);
    if (limit !== "max" && Number(limit) > 0 && Number(period) > 0) quota = Number(limit) / Number(period);
  } else {
    const limit = Number(tryRead("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"));
    const period = Number(tryRead("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
    if (limit > 0 && period > 0) quota = limit / period;
  }
  return Math.max(1, Math.min(availableParallelism(), Math.ceil(quota)));
}
