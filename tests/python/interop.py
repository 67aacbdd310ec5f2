"""Drives the stand-in with the official, unchanged CoppeliaSim Python client (PyPI
coppeliasim-zmqremoteapi-client). Usage: interop.py PORT DT. Exits non-zero on failure."""

import sys

from coppeliasim_zmqremoteapi_client import RemoteAPIClient

EPS = 1e-9
STEPS = 100


def wait_stopped(sim):
    for _ in range(10000):
        if sim.getSimulationState() == sim.simulation_stopped:
            return
    raise AssertionError('simulation did not stop')


def main():
    port, dt = int(sys.argv[1]), float(sys.argv[2])
    client = RemoteAPIClient(port=port)
    sim = client.require('sim')
    assert sim.getSimulationState() == sim.simulation_stopped
    assert abs(sim.getSimulationTimeStep() - dt) < EPS
    assert sim.getInt32Param(sim.intparam_program_version) >= 40600

    # Stepping set before the start (the official examples' order): pass 0 is held.
    assert sim.setStepping(True) == 0
    sim.startSimulation()
    for _ in range(STEPS):
        sim.step()
    t = sim.getSimulationTime()
    assert abs(t - STEPS * dt) < EPS, f'after {STEPS} steps t = {t}, expected {STEPS * dt}'
    sim.stopSimulation()
    wait_stopped(sim)

    # Start first, then stepping: the pass held when stepping starts is the reference.
    sim.startSimulation()
    sim.setStepping(True)
    t0 = sim.getSimulationTime()
    for _ in range(STEPS):
        sim.step()
    t1 = sim.getSimulationTime()
    assert abs((t1 - t0) - STEPS * dt) < EPS, f'{STEPS} steps advanced {t1 - t0}'
    sim.stopSimulation()
    wait_stopped(sim)
    print(f'interop ok: t = {t}, then {t0} -> {t1}')


if __name__ == '__main__':
    main()
