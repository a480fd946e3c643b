/**
 * One cluster's live state: the cluster object, topology, events and jobs, fetched over HTTP and then
 * kept current by ws /ws/clusters/{id}/ (no polling). Every (re)connection resynchronises from the
 * HTTP endpoints, so what happened while the link was down is not missed.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../api/client";
import { clusters as clustersApi, resultsOf } from "../api/endpoints";
import type { Cluster, ClusterEvent, Job, LiveMessage, Topology } from "../api/types";
import { LiveSocket, websocketUrl, type LinkStatus } from "../lib/liveSocket";
import { isJobActive, isNewerTopology, mergeEvents, mergeJobs, upsertJob } from "../lib/liveState";

export interface ClusterLive {
  cluster: Cluster | null;
  topology: Topology | null;
  events: ClusterEvent[];
  jobs: Job[];
  notFound: boolean;
  error: unknown;
  link: { status: LinkStatus; retryAt: number | null; everConnected: boolean };
  retryNow(): void;
  refreshCluster(): Promise<void>;
  /** Refetch the cluster, topology, events and jobs (after an action whose effect should show at once). */
  refresh(): Promise<void>;
  applyJob(job: Job): void;
  setCluster(cluster: Cluster): void;
}

export function useClusterLive(clusterId: number): ClusterLive {
  const [cluster, setCluster] = useState<Cluster | null>(null);
  const [topology, setTopology] = useState<Topology | null>(null);
  const [events, setEvents] = useState<ClusterEvent[]>([]);
  const [jobs, setJobs] = useState<Job[]>([]);
  const [notFound, setNotFound] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [link, setLink] = useState<ClusterLive["link"]>({ status: "connecting", retryAt: null, everConnected: false });
  const socketRef = useRef<LiveSocket | null>(null);
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const applyTopology = useCallback((next: Topology) => {
    setTopology((current) => (isNewerTopology(current, next) ? next : current));
  }, []);

  const refreshCluster = useCallback(async () => {
    try {
      setCluster(await clustersApi.get(clusterId));
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 404) setNotFound(true);
      else setError(exc);
    }
  }, [clusterId]);

  // Events and finished jobs may change the cluster object (primary, paused, armed): refetch it once,
  // shortly after a burst of messages rather than per message.
  const scheduleClusterRefetch = useCallback(() => {
    if (refetchTimer.current) clearTimeout(refetchTimer.current);
    refetchTimer.current = setTimeout(() => void refreshCluster(), 400);
  }, [refreshCluster]);

  const resync = useCallback(async (): Promise<boolean> => {
    const results = await Promise.allSettled([
      clustersApi.get(clusterId),
      clustersApi.topology(clusterId),
      clustersApi.events(clusterId, 1, 100),
      clustersApi.jobs(clusterId, 1, 20),
    ]);
    const [c, t, e, j] = results;
    if (c.status === "fulfilled") setCluster(c.value);
    else if (c.reason instanceof ApiError && c.reason.status === 404) {
      setNotFound(true);
      return false;
    } else setError(c.reason);
    if (t.status === "fulfilled") applyTopology(t.value);
    if (e.status === "fulfilled") setEvents((cur) => mergeEvents(cur, resultsOf(e.value)));
    if (j.status === "fulfilled") setJobs((cur) => mergeJobs(cur, resultsOf(j.value)));
    const firstFailure = [t, e, j].find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
    setError(firstFailure ? firstFailure.reason : c.status === "rejected" ? c.reason : null);
    return true;
  }, [clusterId, applyTopology]);

  useEffect(() => {
    setCluster(null);
    setTopology(null);
    setEvents([]);
    setJobs([]);
    setNotFound(false);
    setError(null);
    let cancelled = false;
    const socket = new LiveSocket({
      url: websocketUrl(`/ws/clusters/${clusterId}/`),
      onMessage: (raw) => {
        const message = raw as LiveMessage;
        if (message.type === "topology" && message.topology) applyTopology(message.topology);
        else if (message.type === "event" && message.event) {
          setEvents((cur) => mergeEvents(cur, [message.event]));
          scheduleClusterRefetch();
        } else if (message.type === "job" && message.job) {
          setJobs((cur) => upsertJob(cur, message.job));
          if (!isJobActive(message.job)) scheduleClusterRefetch();
        }
      },
      onStatus: (status, info) => {
        setLink((cur) => ({
          status,
          retryAt: info.retryInMs !== undefined ? Date.now() + info.retryInMs : null,
          everConnected: cur.everConnected || status === "open",
        }));
        // A refused handshake looks like a network failure to the browser. After a few, ask over HTTP:
        // an expired session (401) signs out, a cluster now hidden or deleted (404) shows "not found".
        if (status === "down" && info.attempt >= 3) {
          clustersApi.get(clusterId).then(
            () => undefined,
            (exc) => {
              if (exc instanceof ApiError && exc.status === 404) {
                setNotFound(true);
                socket.stop();
              }
            },
          );
        }
      },
      // Every (re)connection refetches what the socket may have missed while it was down.
      onOpen: () => void resync().then((found) => found || socket.stop()),
    });
    socketRef.current = socket;
    // Subscribe only once the cluster is known to be visible: a hidden cluster's socket is refused,
    // and retrying that would only fill the console.
    clustersApi.get(clusterId).then(
      (c) => {
        if (cancelled) return;
        setCluster(c);
        socket.start();
      },
      (exc) => {
        if (cancelled) return;
        if (exc instanceof ApiError && exc.status === 404) setNotFound(true);
        else {
          setError(exc);
          socket.start(); // e.g. a blip: the socket's reconnection brings the page back
        }
      },
    );
    const online = () => socket.retryNow();
    window.addEventListener("online", online);
    return () => {
      cancelled = true;
      window.removeEventListener("online", online);
      if (refetchTimer.current) clearTimeout(refetchTimer.current);
      socket.stop();
      socketRef.current = null;
    };
  }, [clusterId, resync, applyTopology, scheduleClusterRefetch]);

  useEffect(() => {
    if (link.status === "denied") setNotFound(true);
  }, [link.status]);

  return {
    cluster,
    topology,
    events,
    jobs,
    notFound,
    error,
    link,
    retryNow: () => socketRef.current?.retryNow(),
    refreshCluster,
    refresh: async () => {
      await resync();
    },
    applyJob: (job: Job) => setJobs((cur) => upsertJob(cur, job)),
    setCluster,
  };
}
