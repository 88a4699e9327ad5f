// The baseline for `npm run bench:startup`: a bare Pulumi TypeScript program with one resource.
import * as random from "@pulumi/random";

export const name = new random.RandomPet("pet").id;
