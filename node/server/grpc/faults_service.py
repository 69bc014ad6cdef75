"""The Faults gRPC service (only with --enable-fault-injection)."""

from __future__ import annotations

from rumor.node.core.errors import InvalidRequest
from rumor.node.server.driver.clock import WallClock
from rumor.node.server.driver.codec import record_from_pb
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.node.server.driver.faults import FaultRules
from rumor.node.server.grpc.rpc import Context
from rumor.v1 import faults_pb2 as pb


class FaultsService:
    def __init__(self, rules: FaultRules, clock: WallClock, driver: EngineDriver) -> None:
        self.rules = rules
        self.clock = clock
        self.driver = driver

    def _state(self) -> pb.FaultState:
        rules = self.rules
        return pb.FaultState(
            blocked_outbound=sorted(rules.blocked_outbound),
            blocked_inbound=sorted(rules.blocked_inbound),
            all_outbound_blocked=rules.all_outbound,
            all_inbound_blocked=rules.all_inbound,
            drop_fraction=rules.drop_fraction,
            delay_fraction=rules.delay_fraction,
            delay_ms=rules.delay_ms,
            clock_offset_ms=self.clock.offset_ms,
        )

    def _apply_block(self, request: pb.BlockRequest, blocked: bool) -> None:
        outbound = request.direction in (pb.DIRECTION_BOTH, pb.DIRECTION_OUTBOUND)
        inbound = request.direction in (pb.DIRECTION_BOTH, pb.DIRECTION_INBOUND)
        rules = self.rules
        if not request.peers:
            if outbound:
                rules.all_outbound = blocked
            if inbound:
                rules.all_inbound = blocked
            if not blocked:
                if outbound:
                    rules.blocked_outbound.clear()
                if inbound:
                    rules.blocked_inbound.clear()
            return
        for peer in request.peers:
            for enabled, chosen in (
                (outbound, rules.blocked_outbound),
                (inbound, rules.blocked_inbound),
            ):
                if enabled:
                    (chosen.add if blocked else chosen.discard)(peer)

    async def Block(self, request: pb.BlockRequest, context: Context) -> pb.FaultState:
        self._apply_block(request, True)
        return self._state()

    async def Unblock(self, request: pb.BlockRequest, context: Context) -> pb.FaultState:
        self._apply_block(request, False)
        return self._state()

    async def SetLoss(self, request: pb.LossRequest, context: Context) -> pb.FaultState:
        for name, value in (
            ("drop_fraction", request.drop_fraction),
            ("delay_fraction", request.delay_fraction),
        ):
            if not 0 <= value <= 1:
                raise InvalidRequest(f"{name} must be between 0 and 1; got {value}")
        self.rules.drop_fraction = request.drop_fraction
        self.rules.delay_fraction = request.delay_fraction
        self.rules.delay_ms = request.delay_ms
        return self._state()

    async def SetClockOffset(
        self, request: pb.ClockOffsetRequest, context: Context
    ) -> pb.FaultState:
        self.clock.offset_ms = request.offset_ms
        return self._state()

    async def Plant(self, request: pb.PlantRequest, context: Context) -> pb.FaultState:
        self.driver.replica.plant(record_from_pb(request.record))
        return self._state()

    async def Clear(self, request: pb.Empty, context: Context) -> pb.FaultState:
        self.rules.clear()
        self.clock.offset_ms = 0
        return self._state()

    async def State(self, request: pb.Empty, context: Context) -> pb.FaultState:
        return self._state()
