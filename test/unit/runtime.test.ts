import { expect } from 'chai';

describe('runtime', () => {
  // The project pins Node 24 through the `node` devDependency (see README, "Node version").
  it('runs on the pinned Node 24, not the machine Node 20', () => {
    expect(Number(process.versions.node.split('.')[0])).to.equal(24);
  });
});
