/**
 * A modal confirmation (native <dialog>: focus stays inside, Escape cancels) that says what will
 * happen, runs the action, and shows the API's answer (e.g. a 409 with its checks) without closing.
 */
import { useEffect, useRef, useState, type ReactNode } from "react";
import { ErrorMessage } from "./ErrorMessage";

interface Props {
  title: string;
  confirmLabel: string;
  danger?: boolean;
  children: ReactNode;
  onConfirm: () => Promise<void>;
  onClose: () => void;
  confirmDisabled?: boolean;
}

export function ConfirmDialog({ title, confirmLabel, danger, children, onConfirm, onClose, confirmDisabled }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} className="dialog" aria-labelledby="dialog-title" onCancel={(e) => { e.preventDefault(); if (!busy) onClose(); }}>
      <h2 id="dialog-title">{title}</h2>
      <div className="dialog-body">{children}</div>
      <ErrorMessage error={error} title="dbpilot did not start this." />
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose} disabled={busy}>Cancel</button>
        <button
          type="button"
          className={danger ? "btn btn-danger" : "btn btn-primary"}
          onClick={confirm}
          disabled={busy || confirmDisabled}
        >
          {busy ? "Working…" : confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
