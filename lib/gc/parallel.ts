// Work on a list with a bounded number of requests in flight.

/**
 * Runs `work` on every item, `parallelism` at a time. After a failure no new work starts; what is
 * in flight finishes, then the first failure is thrown.
 */
export async function inParallel<T>(items: T[], parallelism: number, work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    let failure: unknown;
    const worker = async () => {
        while (next < items.length && failure === undefined) {
            try {
                await work(items[next++]!);
            } catch (error) {
                failure ??= error;
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(parallelism, items.length) }, worker));
    if (failure !== undefined) {
        throw failure;
    }
}
