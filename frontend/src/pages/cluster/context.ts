/** What the cluster page shares with its tabs (through the router's outlet context). */
import { useOutletContext } from "react-router-dom";
import type { Role } from "../../api/types";
import type { ClusterLive } from "../../hooks/useClusterLive";

export interface ClusterPageContext {
  clusterId: number;
  live: ClusterLive;
  role: Role | null;
}

export function useClusterPage(): ClusterPageContext {
  return useOutletContext<ClusterPageContext>();
}
