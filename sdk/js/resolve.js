// Node module resolve hook used by register.js.
const here = new URL("./", import.meta.url);
const targets = {
  "@sluice/plugin": new URL("index.js", here).href,
  "@sluice/plugin/testing": new URL("testing.js", here).href,
};

export async function resolve(specifier, context, next) {
  const url = targets[specifier];
  if (url !== undefined) return { url, shortCircuit: true, format: "module" };
  return next(specifier, context);
}
