"""What the official Python client (PyPI coppeliasim-zmqremoteapi-client) sees of rules read
from zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua. Usage:
conformance.py PORT. Exits non-zero on failure."""

import sys

from coppeliasim_zmqremoteapi_client import RemoteAPIClient


def main():
    client = RemoteAPIClient(port=int(sys.argv[1]))
    sim = client.require('sim')

    # sim.setStepping: a level, previous level returned (0, 1, 2), then back down.
    levels = [sim.setStepping(True), sim.setStepping(True), sim.setStepping(False)]
    assert levels == [0, 1, 2], levels
    assert sim.setStepping(False) == 1

    # handleRequest: a function CoppeliaSim lacks raises "No such function".
    try:
        client.call('sim.setExtensionString', [1, -1, 'id{1}'])
    except Exception as e:  # the client raises its own exception type with the server's text
        assert 'No such function: sim.setExtensionString' in str(e), str(e)
    else:
        raise AssertionError('sim.setExtensionString did not raise')
    assert not hasattr(sim, 'setExtensionString')

    # sim.step while stopped returns (after its _*wait*_ round) instead of hanging.
    assert sim.getSimulationState() == sim.simulation_stopped
    sim.step()
    print('conformance ok')


main()
