/**
 * Inputs several tests of a file read (a trained run, a dataset), built by whichever test asks
 * first and then shared within the process. Each test asks for what it reads, so it also runs
 * alone (`node --test --test-name-pattern=...`); none may change what it was given.
 */
export function oncePerProcess<T>(build: () => Promise<T>): () => Promise<T> {
  let built: Promise<T> | undefined;
  return () => {
    built ??= build();
    return built;
  };
}
