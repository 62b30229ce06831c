//! The tunnel life cycle on the control thread: on "Quick Mode done" choose the PIC, take a
//! pool unit, build the implicit dynamic rule and the reverse route, then publish SA pair →
//! rule → route to the workers; on delete, expiry or peer replacement undo all of it in reverse.
//!
//! Installation is all-or-nothing: every step that can fail runs before anything is published,
//! and a failure gives back what the earlier steps took (placement hold, unit, route, SPIs).
//!
//! Publication scope: an SA pair goes to its owner worker only; rules and routes go to every
//! worker, because any worker may receive the LAN packet that the route steers into the unit
//! (the rule tells it which worker owns the SAs, and it hands the packet over).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use dataplane::prefix::Prefix;
use dataplane::sa::{Direction, PeerEndpoint, ProxyPair, SaSpec};
use dataplane::tables::{
    update_queue, DynamicRule, DynamicRuleId, Fibs, NextHop, Route, RouteOrigin, RuleTarget,
    SaBundle, SaKinds, ServiceSetId, StaticRule, TableUpdate, TunnelId, UnitId, UpdateReceiver,
    UpdateSender, VrfId, WorkerEvent, WorkerId,
};

use super::directory::{UnitDirectory, VrfDirectory};
use super::placement::{PeerKey, Placement};
use super::pools::InterfacePools;
use super::refusal::TunnelRefusal;
use super::reservations::{lock, Reservations, SpiBroker};
use super::sa_build::{SaBuilder, SaContext};
use super::topology::{interface_of, TopologyError, TunnelTopology};
use super::view::{ReverseRouteView, RouteLine, RouteTableView, TunnelView, TunnelsView};

/// What the IKE responder reports once Quick Mode completes.
#[derive(Clone, Debug)]
pub struct ChildSaUp {
    pub access_profile: String,
    pub peer: PeerEndpoint,
    pub proxy: ProxyPair,
    /// Inbound SAs (SPIs from `allocate_inbound_spi`); an AH+ESP bundle gives two.
    pub inbound: Vec<SaSpec>,
    pub outbound: Vec<SaSpec>,
}

/// What became of a tunnel when one of its SAs went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaDown {
    /// The last SA generation went: the tunnel, its rule, route and unit are gone.
    TunnelRemoved(TunnelId),
    /// An older generation (before a rekey) went; the tunnel stays up.
    GenerationRemoved(TunnelId),
    Unknown,
}

/// One worker's end of the update queue, for the lead to hand to that worker's thread.
pub struct WorkerQueue<K: SaKinds> {
    pub worker: WorkerId,
    pub updates: UpdateReceiver<K>,
}

/// Inbound states by SPI and the outbound bundle, built before anything is installed.
type BuiltSas<K> = (
    Vec<(u32, <K as SaKinds>::Inbound)>,
    SaBundle<<K as SaKinds>::Outbound>,
);

struct SaGeneration {
    inbound_spis: Vec<u32>,
    outbound_spis: Vec<u32>,
}

struct Tunnel {
    serial: u64,
    peer_key: PeerKey,
    peer: PeerEndpoint,
    proxy: ProxyPair,
    placement: Placement,
    unit: UnitId,
    /// The pool the unit came from (`None`: the service set's inside unit).
    pool: Option<String>,
    rule: DynamicRule,
    route: Option<(VrfId, Route)>,
    generations: Vec<SaGeneration>,
}

struct ServiceSetState {
    id: ServiceSetId,
    inside_unit: UnitId,
    vrf: VrfId,
    outer_vrf: VrfId,
}

pub struct TunnelManager<K: SaKinds, B: SaBuilder<K>> {
    builder: B,
    topology: TunnelTopology,
    sets: Vec<ServiceSetState>,
    units: UnitDirectory,
    vrfs: VrfDirectory,
    pools: InterfacePools,
    reservations: Arc<Mutex<Reservations>>,
    senders: Vec<Option<UpdateSender<K>>>,
    rib: Fibs,
    static_rules: Vec<Vec<StaticRule>>,
    tunnels: Vec<Option<Tunnel>>,
    free_ids: Vec<u32>,
    by_selector: HashMap<(PeerKey, ProxyPair), TunnelId>,
    /// Every tunnel of a peer, so a peer going away costs its own tunnels, not all of them.
    by_peer: HashMap<PeerKey, Vec<TunnelId>>,
    by_spi: HashMap<u32, TunnelId>,
    next_serial: u64,
    /// Bumped by every change to what `view` shows of the tunnels.
    tunnel_changes: u64,
}

impl<K: SaKinds, B: SaBuilder<K>> TunnelManager<K, B> {
    /// A manager for `topology`, with one update queue of `queue_capacity` per worker.
    pub fn new(
        topology: TunnelTopology,
        builder: B,
        queue_capacity: usize,
    ) -> Result<(Self, Vec<WorkerQueue<K>>), TopologyError> {
        topology.validate()?;
        let worker_slots = topology
            .pics
            .iter()
            .flat_map(|p| p.workers.iter())
            .map(|w| usize::from(w.0) + 1)
            .max()
            .unwrap_or(0);
        let mut senders: Vec<Option<UpdateSender<K>>> = (0..worker_slots).map(|_| None).collect();
        let mut queues = Vec::new();
        for worker in topology.pics.iter().flat_map(|p| p.workers.iter()) {
            let (sender, receiver) = update_queue(queue_capacity);
            senders[usize::from(worker.0)] = Some(sender);
            queues.push(WorkerQueue {
                worker: *worker,
                updates: receiver,
            });
        }
        let mut units = UnitDirectory::default();
        let mut vrfs = VrfDirectory::default();
        let pools = InterfacePools::new(&topology.pools, &mut units);
        let sets: Vec<ServiceSetState> = topology
            .service_sets
            .iter()
            .enumerate()
            .map(|(index, set)| ServiceSetState {
                id: ServiceSetId(index as u16),
                inside_unit: units.intern(&set.inside_unit),
                vrf: vrfs.intern(set.vrf.as_deref()),
                outer_vrf: vrfs.intern(set.local_gateway_vrf.as_deref()),
            })
            .collect();
        let reservations = Reservations::new(&topology.pics, &topology.service_sets);
        let mut manager = TunnelManager {
            builder,
            sets,
            units,
            vrfs,
            pools,
            reservations: Arc::new(Mutex::new(reservations)),
            senders,
            rib: Fibs::new(),
            static_rules: Vec::new(),
            tunnels: Vec::new(),
            free_ids: Vec::new(),
            by_selector: HashMap::new(),
            by_peer: HashMap::new(),
            by_spi: HashMap::new(),
            next_serial: 1,
            tunnel_changes: 0,
            topology,
        };
        manager.bind_units();
        Ok((manager, queues))
    }

    /// Tells every worker which service set each inside and pool unit belongs to.
    fn bind_units(&mut self) {
        let mut bindings = Vec::new();
        for (index, set) in self.topology.service_sets.iter().enumerate() {
            let service_set = self.sets[index].id;
            bindings.push((self.sets[index].inside_unit, service_set));
            let interface = interface_of(&set.inside_unit);
            for pool in self
                .topology
                .pools
                .iter()
                .filter(|p| Some(&p.id) == set.pool_id.as_ref())
            {
                for unit in pool
                    .units
                    .iter()
                    .filter(|u| interface_of(&u.name) == interface)
                {
                    if let Some(id) = self.units.id(&unit.name) {
                        bindings.push((id, service_set));
                    }
                }
            }
        }
        for (unit, service_set) in bindings {
            self.send_to_all(|| TableUpdate::BindUnit { unit, service_set });
        }
    }

    /// Reserves an inbound SPI on the worker that will own the peer's tunnels. The IKE side
    /// calls this while building its Quick Mode answer, and `release_inbound_spi` if the
    /// exchange fails before `child_sa_up`.
    pub fn allocate_inbound_spi(
        &mut self,
        access_profile: &str,
        remote: std::net::IpAddr,
    ) -> Result<u32, TunnelRefusal> {
        self.spi_broker()
            .allocate_for_profile(access_profile, remote)
    }

    /// Gives back a reserved SPI that no tunnel uses; false if it was not reserved.
    pub fn release_inbound_spi(&mut self, spi: u32) -> bool {
        self.reservations().release_reserved(spi)
    }

    /// The handle the IKE responder allocates and releases inbound SPIs through.
    pub fn spi_broker(&self) -> SpiBroker {
        SpiBroker::new(Arc::clone(&self.reservations))
    }

    fn reservations(&self) -> MutexGuard<'_, Reservations> {
        lock(&self.reservations)
    }

    /// Installs the tunnel of a completed Quick Mode (or rekeys it, if the peer already has
    /// one for this proxy pair). On refusal nothing stays installed and the reserved inbound
    /// SPIs are released.
    pub fn child_sa_up(&mut self, up: ChildSaUp) -> Result<TunnelId, TunnelRefusal> {
        let peer = PeerKey {
            access_profile: up.access_profile.clone(),
            remote: up.peer.remote.ip(),
        };
        let result = self.install(&peer, &up);
        for spec in &up.inbound {
            self.reservations().settle(spec.spi, &peer, result.is_ok());
        }
        result
    }

    fn install(&mut self, peer: &PeerKey, up: &ChildSaUp) -> Result<TunnelId, TunnelRefusal> {
        check_sa_set(up)?;
        for spec in &up.inbound {
            if !self.reservations().is_reserved_for(spec.spi, peer) {
                return Err(TunnelRefusal::SpiNotReserved { spi: spec.spi });
            }
        }
        if let Some(&tunnel) = self.by_selector.get(&(peer.clone(), up.proxy)) {
            let service_set = self.tunnels[tunnel.0 as usize]
                .as_ref()
                .map(|t| t.placement.service_set)
                .ok_or(TunnelRefusal::BadSaSet("tunnel record missing"))?;
            let context = self.sa_context(service_set, up.proxy);
            let (inbound, outbound) = self.build_states(&up.inbound, &up.outbound, &context)?;
            self.rekey(tunnel, up, inbound, outbound);
            return Ok(tunnel);
        }

        let placement = self.reservations().hold(peer)?;
        let context = self.sa_context(placement.service_set, up.proxy);
        let (inbound, outbound) = match self.build_states(&up.inbound, &up.outbound, &context) {
            Ok(built) => built,
            Err(refusal) => {
                self.reservations().release_hold(peer);
                return Err(refusal);
            }
        };
        if let Some(spec) = up
            .inbound
            .iter()
            .find(|s| dataplane::tables::spi_owner(s.spi) != placement.worker)
        {
            self.reservations().release_hold(peer);
            return Err(TunnelRefusal::SpiOnWrongWorker {
                spi: spec.spi,
                owner: dataplane::tables::spi_owner(spec.spi),
                placed: placement.worker,
            });
        }
        let Some(tunnel) = self.take_tunnel_id() else {
            self.reservations().release_hold(peer);
            return Err(TunnelRefusal::TooManyTunnels);
        };

        let set_info = &self.topology.service_sets[placement.service_set];
        let set_state = &self.sets[placement.service_set];
        let pool = set_info.pool_id.clone();
        let unit = match &pool {
            Some(pool_id) => {
                match self
                    .pools
                    .take(pool_id, interface_of(&set_info.inside_unit), tunnel)
                {
                    Ok(unit) => unit,
                    Err(e) => {
                        self.free_ids.push(tunnel.0);
                        self.reservations().release_hold(peer);
                        return Err(e.into());
                    }
                }
            }
            None => set_state.inside_unit,
        };

        let rule = DynamicRule {
            id: DynamicRuleId(tunnel.0),
            inside_unit: unit,
            source: up.proxy.local,
            destination: up.proxy.remote,
            target: RuleTarget {
                tunnel,
                owner: placement.worker,
            },
        };

        let route = if gets_reverse_route(&up.proxy.remote, set_info.next_hop_style) {
            let vrf = set_state.vrf;
            let route = Route::new(
                up.proxy.remote,
                RouteOrigin::ReverseRoute,
                NextHop::ServicesUnit(unit),
            );
            if let Err(e) = self.rib.get_or_create(vrf).add(route) {
                if let Some(pool_id) = &pool {
                    self.pools.give_back(pool_id, unit, tunnel);
                }
                self.free_ids.push(tunnel.0);
                self.reservations().release_hold(peer);
                return Err(TunnelRefusal::ReverseRoute {
                    prefix: up.proxy.remote,
                    reason: e.to_string(),
                });
            }
            Some((vrf, route))
        } else {
            None
        };

        // Nothing below can fail: publish in dependency order.
        let inbound_spis: Vec<u32> = up.inbound.iter().map(|s| s.spi).collect();
        self.send_to(
            placement.worker,
            TableUpdate::AddSaPair {
                tunnel,
                inbound,
                outbound,
            },
        );
        self.send_to_all(|| TableUpdate::AddRule(rule));
        if let Some((vrf, route)) = route {
            self.send_to_all(|| TableUpdate::AddRoute { vrf, route });
        }

        for spi in &inbound_spis {
            self.by_spi.insert(*spi, tunnel);
        }
        self.by_selector.insert((peer.clone(), up.proxy), tunnel);
        self.by_peer.entry(peer.clone()).or_default().push(tunnel);
        let serial = self.next_serial;
        self.next_serial += 1;
        self.tunnel_changes += 1;
        self.tunnels[tunnel.0 as usize] = Some(Tunnel {
            serial,
            peer_key: peer.clone(),
            peer: up.peer,
            proxy: up.proxy,
            placement,
            unit,
            pool,
            rule,
            route,
            generations: vec![SaGeneration {
                inbound_spis,
                outbound_spis: up.outbound.iter().map(|s| s.spi).collect(),
            }],
        });
        Ok(tunnel)
    }

    /// A new SA generation for an existing tunnel: unit, rule and route stay as they are.
    fn rekey(
        &mut self,
        tunnel: TunnelId,
        up: &ChildSaUp,
        inbound: Vec<(u32, K::Inbound)>,
        outbound: SaBundle<K::Outbound>,
    ) {
        let Some(record) = self.tunnels[tunnel.0 as usize].as_mut() else {
            return;
        };
        let owner = record.placement.worker;
        let inbound_spis: Vec<u32> = up.inbound.iter().map(|s| s.spi).collect();
        record.generations.push(SaGeneration {
            inbound_spis: inbound_spis.clone(),
            outbound_spis: up.outbound.iter().map(|s| s.spi).collect(),
        });
        record.peer = up.peer;
        self.tunnel_changes += 1;
        for spi in inbound_spis {
            self.by_spi.insert(spi, tunnel);
        }
        self.send_to(
            owner,
            TableUpdate::AddSaPair {
                tunnel,
                inbound,
                outbound,
            },
        );
    }

    fn sa_context(&self, service_set: usize, proxy: ProxyPair) -> SaContext {
        let set = &self.sets[service_set];
        SaContext {
            proxy,
            inside_vrf: set.vrf,
            outer_vrf: set.outer_vrf,
        }
    }

    /// Builds every SA state before anything is installed; more than two SAs per direction
    /// (an AH+ESP bundle is the most) is refused, never a panic.
    fn build_states(
        &self,
        inbound_specs: &[SaSpec],
        outbound_specs: &[SaSpec],
        context: &SaContext,
    ) -> Result<BuiltSas<K>, TunnelRefusal> {
        let refusal = |spi: u32| move |reason| TunnelRefusal::SaBuild { spi, reason };
        if let Some(built) = self.build_bundle(inbound_specs, outbound_specs, context) {
            return built;
        }
        let mut inbound = Vec::with_capacity(inbound_specs.len());
        for spec in inbound_specs {
            let state = self
                .builder
                .inbound(spec, context)
                .map_err(refusal(spec.spi))?;
            inbound.push((spec.spi, state));
        }
        let mut outbound = SaBundle::new();
        for spec in outbound_specs {
            let state = self
                .builder
                .outbound(spec, context)
                .map_err(refusal(spec.spi))?;
            if outbound.try_push(state).is_err() {
                return Err(TunnelRefusal::BadSaSet("more than two outbound SAs"));
            }
        }
        Ok((inbound, outbound))
    }

    /// An AH+ESP bundle both ways, when the builder can make one state of it: the inbound
    /// state is filed under the AH SPI (the outer header a packet carries), the outbound bundle
    /// holds the one combined transform. Both inbound SPIs still name the tunnel for deletes.
    fn build_bundle(
        &self,
        inbound_specs: &[SaSpec],
        outbound_specs: &[SaSpec],
        context: &SaContext,
    ) -> Option<Result<BuiltSas<K>, TunnelRefusal>> {
        let (in_esp, in_ah) = super::sa_build::as_bundle(inbound_specs)?;
        let (out_esp, out_ah) = super::sa_build::as_bundle(outbound_specs)?;
        let inbound = self.builder.inbound_bundle(in_esp, in_ah, context)?;
        let outbound = self.builder.outbound_bundle(out_esp, out_ah, context)?;
        let built = inbound
            .map_err(|reason| TunnelRefusal::SaBuild {
                spi: in_ah.spi,
                reason,
            })
            .and_then(|inbound| {
                let outbound = outbound.map_err(|reason| TunnelRefusal::SaBuild {
                    spi: out_ah.spi,
                    reason,
                })?;
                let mut bundle = SaBundle::new();
                bundle.push(outbound);
                Ok((vec![(in_ah.spi, inbound)], bundle))
            });
        Some(built)
    }

    /// An SA (by our inbound SPI) was deleted by the peer or expired.
    pub fn child_sa_down(&mut self, inbound_spi: u32) -> SaDown {
        let Some(&tunnel) = self.by_spi.get(&inbound_spi) else {
            return SaDown::Unknown;
        };
        let Some(record) = self.tunnels[tunnel.0 as usize].as_mut() else {
            return SaDown::Unknown;
        };
        let Some(position) = record
            .generations
            .iter()
            .position(|g| g.inbound_spis.contains(&inbound_spi))
        else {
            return SaDown::Unknown;
        };
        // The newest generation carries the outbound SAs: losing it takes the tunnel down.
        if position + 1 == record.generations.len() {
            self.tear_down(tunnel);
            return SaDown::TunnelRemoved(tunnel);
        }
        let generation = record.generations.remove(position);
        let owner = record.placement.worker;
        self.tunnel_changes += 1;
        for spi in &generation.inbound_spis {
            self.by_spi.remove(spi);
            self.reservations().release_spi(*spi);
        }
        self.send_to(
            owner,
            TableUpdate::RemoveInbound {
                spis: generation.inbound_spis,
            },
        );
        SaDown::GenerationRemoved(tunnel)
    }

    /// Removes a tunnel whole: route, rule, SAs, unit, placement hold, in that order.
    pub fn tear_down(&mut self, tunnel: TunnelId) -> bool {
        let Some(record) = self
            .tunnels
            .get_mut(tunnel.0 as usize)
            .and_then(Option::take)
        else {
            return false;
        };
        self.tunnel_changes += 1;
        if let Some((vrf, route)) = record.route {
            self.rib.get_or_create(vrf).remove(&route);
            self.send_to_all(|| TableUpdate::RemoveRoute { vrf, route });
        }
        let rule_id = record.rule.id;
        self.send_to_all(|| TableUpdate::RemoveRule(rule_id));
        let inbound_spis: Vec<u32> = record
            .generations
            .iter()
            .flat_map(|g| g.inbound_spis.iter().copied())
            .collect();
        for spi in &inbound_spis {
            self.by_spi.remove(spi);
            self.reservations().release_spi(*spi);
        }
        self.send_to(
            record.placement.worker,
            TableUpdate::RemoveSaPair {
                tunnel,
                inbound_spis,
            },
        );
        if let Some(pool_id) = &record.pool {
            self.pools.give_back(pool_id, record.unit, tunnel);
        }
        self.reservations().release_hold(&record.peer_key);
        if let Some(tunnels) = self.by_peer.get_mut(&record.peer_key) {
            tunnels.retain(|t| *t != tunnel);
            if tunnels.is_empty() {
                self.by_peer.remove(&record.peer_key);
            }
        }
        self.by_selector
            .remove(&(record.peer_key.clone(), record.proxy));
        self.free_ids.push(tunnel.0);
        true
    }

    /// The peer's IKE SA was replaced (it came back, maybe from a new address) or deleted:
    /// every tunnel it had at `remote` goes.
    pub fn peer_down(&mut self, access_profile: &str, remote: std::net::IpAddr) -> Vec<TunnelId> {
        let peer = PeerKey {
            access_profile: access_profile.to_string(),
            remote,
        };
        let gone = self.by_peer.get(&peer).cloned().unwrap_or_default();
        for tunnel in &gone {
            self.tear_down(*tunnel);
        }
        gone
    }

    /// Reacts to a worker event: a hard lifetime of an inbound SA removes it (and the tunnel
    /// with its last generation). Soft lifetimes are the IKE side's cue to rekey.
    pub fn on_worker_event(&mut self, event: &WorkerEvent) -> SaDown {
        match event {
            WorkerEvent::HardLifetime {
                spi,
                direction: Direction::Inbound,
                ..
            } => self.child_sa_down(*spi),
            WorkerEvent::HardLifetime {
                spi,
                direction: Direction::Outbound,
                ..
            } => {
                // Outbound SPIs are the peer's and not unique across peers: find the
                // generation by outbound SPI among tunnels that hold one.
                let found = self.tunnels.iter().flatten().find_map(|t| {
                    t.generations
                        .iter()
                        .find(|g| g.outbound_spis.contains(spi))
                        .and_then(|g| g.inbound_spis.first().copied())
                });
                match found {
                    Some(inbound) => self.child_sa_down(inbound),
                    None => SaDown::Unknown,
                }
            }
            _ => SaDown::Unknown,
        }
    }

    /// Installs a configured route (interface, local or static) in `vrf` on every worker.
    pub fn add_route(&mut self, vrf: Option<&str>, route: Route) -> Result<(), TunnelRefusal> {
        let vrf = self.vrfs.intern(vrf);
        self.rib
            .get_or_create(vrf)
            .add(route)
            .map_err(|e| TunnelRefusal::ReverseRoute {
                prefix: route.prefix,
                reason: e.to_string(),
            })?;
        self.send_to_all(|| TableUpdate::AddRoute { vrf, route });
        Ok(())
    }

    pub fn remove_route(&mut self, vrf: Option<&str>, route: Route) -> bool {
        let Some(vrf) = self.vrfs.id(vrf) else {
            return false;
        };
        if !self.rib.get_or_create(vrf).remove(&route) {
            return false;
        }
        self.send_to_all(|| TableUpdate::RemoveRoute { vrf, route });
        true
    }

    /// Sets a service set's ordered static rules on every worker; false for an unknown set.
    pub fn set_static_rules(&mut self, service_set: &str, rules: Vec<StaticRule>) -> bool {
        let Some(index) = self
            .topology
            .service_sets
            .iter()
            .position(|s| s.name == service_set)
        else {
            return false;
        };
        let id = self.sets[index].id;
        while self.static_rules.len() <= index {
            self.static_rules.push(Vec::new());
        }
        self.static_rules[index] = rules.clone();
        self.send_to_all(|| TableUpdate::SetStaticRules {
            service_set: id,
            rules: rules.clone(),
        });
        true
    }

    /// Retries updates that found a worker's queue full; returns how many still wait.
    pub fn flush(&mut self) -> usize {
        self.senders.iter_mut().flatten().map(|s| s.flush()).sum()
    }

    pub fn unit_id(&self, name: &str) -> Option<UnitId> {
        self.units.id(name)
    }

    pub fn vrf_id(&self, name: Option<&str>) -> Option<VrfId> {
        self.vrfs.id(name)
    }

    /// Changes whenever `view().tunnels` may have: equal values mean the same tunnels, so a
    /// watcher can skip building the view in between.
    pub fn tunnel_changes(&self) -> u64 {
        self.tunnel_changes
    }

    pub fn tunnel_count(&self) -> usize {
        self.by_selector.len()
    }

    pub fn reserved_spi_count(&self) -> usize {
        self.reservations().reserved_count()
    }

    pub fn allocated_spi_count(&self) -> u32 {
        self.reservations().allocated_count()
    }

    pub fn placed_peer_count(&self) -> usize {
        self.reservations().balancer().peer_count()
    }

    pub fn unit_holds(&self) -> usize {
        self.pools.holds()
    }

    pub fn pic_load(&self, pic: super::topology::PicId) -> u32 {
        self.reservations().balancer().pic_load(pic)
    }

    /// Adds a service set (a new PIC) at run time; existing peers keep their placement.
    pub fn add_service_set(
        &mut self,
        pic: super::topology::PicInfo,
        set: super::topology::ServiceSetInfo,
    ) -> Result<Vec<WorkerQueue<K>>, TopologyError> {
        let mut next = self.topology.clone();
        if !next.pics.iter().any(|p| p.id == pic.id) {
            next.pics.push(pic.clone());
        }
        next.service_sets.push(set.clone());
        next.validate()?;
        let mut queues = Vec::new();
        for worker in &pic.workers {
            let index = usize::from(worker.0);
            if self.senders.len() <= index {
                self.senders.resize_with(index + 1, || None);
            }
            if self.senders[index].is_none() {
                let (sender, receiver) = update_queue(self.queue_capacity());
                self.senders[index] = Some(sender);
                queues.push(WorkerQueue {
                    worker: *worker,
                    updates: receiver,
                });
            }
        }
        self.topology = next;
        let index = self.topology.service_sets.len() - 1;
        let state = ServiceSetState {
            id: ServiceSetId(index as u16),
            inside_unit: self.units.intern(&set.inside_unit),
            vrf: self.vrfs.intern(set.vrf.as_deref()),
            outer_vrf: self.vrfs.intern(set.local_gateway_vrf.as_deref()),
        };
        self.sets.push(state);
        {
            let mut reservations = self.reservations();
            reservations.add_pic(&pic);
            reservations.add_service_set(&set);
        }
        // New workers start from the current state: bindings, static rules, routes, rules.
        self.resync_new_workers(&queues);
        Ok(queues)
    }

    fn queue_capacity(&self) -> usize {
        4096
    }

    fn resync_new_workers(&mut self, queues: &[WorkerQueue<K>]) {
        let new_workers: Vec<WorkerId> = queues.iter().map(|q| q.worker).collect();
        self.bind_units();
        for (index, rules) in self.static_rules.clone().into_iter().enumerate() {
            let service_set = ServiceSetId(index as u16);
            for worker in &new_workers {
                self.send_to(
                    *worker,
                    TableUpdate::SetStaticRules {
                        service_set,
                        rules: rules.clone(),
                    },
                );
            }
        }
        let rules: Vec<DynamicRule> = self.tunnels.iter().flatten().map(|t| t.rule).collect();
        let mut routes = Vec::new();
        for (vrf, fib) in self.rib.iter() {
            for view in fib.routes() {
                let origin = match (view.reverse_route, view.protocol) {
                    (true, _) => RouteOrigin::ReverseRoute,
                    (false, "Direct") => RouteOrigin::Direct,
                    (false, "Local") => RouteOrigin::Local,
                    _ => RouteOrigin::Static,
                };
                routes.push((
                    vrf,
                    Route {
                        prefix: view.prefix,
                        preference: view.preference,
                        next_hop: view.next_hop,
                        origin,
                    },
                ));
            }
        }
        for worker in &new_workers {
            for rule in &rules {
                self.send_to(*worker, TableUpdate::AddRule(*rule));
            }
            for (vrf, route) in &routes {
                self.send_to(
                    *worker,
                    TableUpdate::AddRoute {
                        vrf: *vrf,
                        route: *route,
                    },
                );
            }
        }
    }

    pub fn view(&self) -> TunnelsView {
        let mut tunnels: Vec<TunnelView> = self
            .tunnels
            .iter()
            .enumerate()
            .filter_map(|(index, t)| t.as_ref().map(|t| (TunnelId(index as u32), t)))
            .map(|(id, t)| {
                let set = &self.topology.service_sets[t.placement.service_set];
                let pic = self
                    .topology
                    .pics
                    .iter()
                    .find(|p| p.id == t.placement.pic)
                    .map_or_else(|| "?".to_string(), |p| p.name.clone());
                TunnelView {
                    id,
                    service_set: set.name.clone(),
                    pic,
                    worker: t.placement.worker,
                    local_gateway: set.local_gateway,
                    peer: t.peer.remote,
                    access_profile: t.peer_key.access_profile.clone(),
                    inside_interface: self.units.name(t.unit).to_string(),
                    rule: format!("junos-dynamic-rule-{}", t.serial),
                    term: format!("junos-dynamic-term-{}", t.serial),
                    rule_type: "dynamic",
                    match_direction: "input",
                    source_address: t.proxy.local,
                    destination_address: t.proxy.remote,
                    inbound_spis: t
                        .generations
                        .iter()
                        .flat_map(|g| g.inbound_spis.iter().copied())
                        .collect(),
                    outbound_spis: t
                        .generations
                        .iter()
                        .flat_map(|g| g.outbound_spis.iter().copied())
                        .collect(),
                    reverse_route: t.route.map(|(vrf, route)| ReverseRouteView {
                        table: self.vrfs.table_name(vrf, !route.prefix.is_ipv4()),
                        prefix: route.prefix,
                    }),
                }
            })
            .collect();
        tunnels.sort_by_key(|t| t.id);
        let mut route_tables = Vec::new();
        for (vrf, fib) in self.rib.iter() {
            for ipv6 in [false, true] {
                let routes: Vec<RouteLine> = fib
                    .routes()
                    .into_iter()
                    .filter(|r| r.prefix.is_ipv4() != ipv6)
                    .map(|r| RouteLine {
                        prefix: r.prefix,
                        protocol: r.protocol,
                        preference: r.preference,
                        next_hop: self.next_hop_text(&r.next_hop),
                        active: r.active,
                    })
                    .collect();
                if !routes.is_empty() {
                    route_tables.push(RouteTableView {
                        table: self.vrfs.table_name(vrf, ipv6),
                        routes,
                    });
                }
            }
        }
        TunnelsView {
            tunnels,
            route_tables,
            pools: self.pools.view(),
        }
    }

    fn next_hop_text(&self, next_hop: &NextHop) -> String {
        match next_hop {
            NextHop::Neighbor { port, gateway } => format!("to {gateway} via port {}", port.0),
            NextHop::Local => "Local".to_string(),
            NextHop::ServicesUnit(unit) => format!("via {}", self.units.name(*unit)),
            NextHop::Discard => "Discard".to_string(),
        }
    }

    /// Installs the SA pair of a configured (manual) term of `service_set` for its static rule
    /// to point at. The SAs go to the worker their inbound SPI names, which must be one of the
    /// set's PIC workers (SPIs below 2^24 name worker 0). Static tunnels last as long as the
    /// configuration, so nothing tracks them for removal.
    pub fn install_static_tunnel(
        &mut self,
        service_set: &str,
        proxy: ProxyPair,
        inbound: &[SaSpec],
        outbound: &[SaSpec],
    ) -> Result<RuleTarget, TunnelRefusal> {
        let Some(index) = self
            .topology
            .service_sets
            .iter()
            .position(|s| s.name == service_set)
        else {
            return Err(TunnelRefusal::BadSaSet("unknown service set"));
        };
        let owner = match inbound.first() {
            Some(spec) => dataplane::tables::spi_owner(spec.spi),
            None => self
                .first_worker_of(index)
                .ok_or(TunnelRefusal::BadSaSet("service set has no worker"))?,
        };
        if !self.workers_of(index).contains(&owner) {
            return Err(TunnelRefusal::BadSaSet(
                "manual SPI names a worker outside the service set's PIC",
            ));
        }
        let context = self.sa_context(index, proxy);
        let (built_inbound, built_outbound) = self.build_states(inbound, outbound, &context)?;
        let tunnel = self.take_tunnel_id().ok_or(TunnelRefusal::TooManyTunnels)?;
        self.send_to(
            owner,
            TableUpdate::AddSaPair {
                tunnel,
                inbound: built_inbound,
                outbound: built_outbound,
            },
        );
        Ok(RuleTarget { tunnel, owner })
    }

    fn workers_of(&self, service_set: usize) -> Vec<WorkerId> {
        let pics: Vec<super::topology::PicId> =
            match &self.topology.service_sets[service_set].interface {
                super::topology::ServicesInterface::Pic(pic) => vec![*pic],
                super::topology::ServicesInterface::Ams { members, .. } => members.clone(),
            };
        self.topology
            .pics
            .iter()
            .filter(|p| pics.contains(&p.id))
            .flat_map(|p| p.workers.iter().copied())
            .collect()
    }

    fn first_worker_of(&self, service_set: usize) -> Option<WorkerId> {
        self.workers_of(service_set).first().copied()
    }

    fn take_tunnel_id(&mut self) -> Option<TunnelId> {
        // Lowest ids first keeps the workers' outbound arrays dense.
        if let Some(id) = self.free_ids.pop() {
            return Some(TunnelId(id));
        }
        let id = u32::try_from(self.tunnels.len()).ok()?;
        self.tunnels.push(None);
        Some(TunnelId(id))
    }

    fn send_to(&mut self, worker: WorkerId, update: TableUpdate<K>) {
        if let Some(Some(sender)) = self.senders.get_mut(usize::from(worker.0)) {
            sender.send(update);
        }
    }

    fn send_to_all(&mut self, mut make: impl FnMut() -> TableUpdate<K>) {
        for sender in self.senders.iter_mut().flatten() {
            sender.send(make());
        }
    }
}

fn check_sa_set(up: &ChildSaUp) -> Result<(), TunnelRefusal> {
    if up.inbound.is_empty() || up.outbound.is_empty() {
        return Err(TunnelRefusal::BadSaSet("no SA in one direction"));
    }
    if up.inbound.len() > 2 || up.outbound.len() > 2 {
        return Err(TunnelRefusal::BadSaSet(
            "more than an AH+ESP bundle per direction",
        ));
    }
    if up.inbound.len() != up.outbound.len() {
        return Err(TunnelRefusal::BadSaSet(
            "directions carry different bundles",
        ));
    }
    if up.inbound.iter().any(|s| s.direction != Direction::Inbound)
        || up
            .outbound
            .iter()
            .any(|s| s.direction != Direction::Outbound)
    {
        return Err(TunnelRefusal::BadSaSet("SA listed in the wrong direction"));
    }
    let (local, remote) = (up.proxy.local, up.proxy.remote);
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(TunnelRefusal::MixedFamilies { local, remote });
    }
    Ok(())
}

/// Junos inserts reverse routes only for next-hop-style service sets, never for 0/0 or ::/0.
pub fn gets_reverse_route(remote: &Prefix, next_hop_style: bool) -> bool {
    next_hop_style && !remote.is_default()
}
