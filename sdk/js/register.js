// Lets Node resolve `@sluice/plugin` to this directory without `npm install`:
//   node --import <repo>/sdk/js/register.js --test
// (`sluice plugin build` does the same for the component with an esbuild alias.)
import { register } from "node:module";

register(new URL("./resolve.js", import.meta.url));
