// nbops for JupyterLab: the runs/models sidebar, the %%track toggle and tracked-cell badges.
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { BadgeManager, isTracked, RunMatcher, toggleTrack } from './track';
import { NbopsSidebar } from './sidebar';

const PLUGIN_ID = 'nbops-labextension:plugin';

namespace CommandIDs {
  export const toggleTrack = 'nbops:toggle-track';
  export const openSidebar = 'nbops:open-sidebar';
  export const refresh = 'nbops:refresh';
}

const nbopsIcon = new LabIcon({
  name: 'nbops:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<circle cx="5" cy="17" r="2.5"/><circle cx="12" cy="8" r="2.5"/><circle cx="19" cy="13" r="2.5"/>' +
    '<path d="M5 17 12 8 19 13" stroke="#616161" stroke-width="1.6" fill="none"/>' +
    '<rect x="2" y="21" width="20" height="1.6"/></g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'nbops runs and model registry sidebar, %%track toggle and badges.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settings: ISettingRegistry | null
  ) => {
    const sidebar = new NbopsSidebar();
    sidebar.title.icon = nbopsIcon;
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, 'nbops-sidebar');

    const badges = new Map<NotebookPanel, BadgeManager>();
    tracker.widgetAdded.connect((_, panel) => {
      const manager = new BadgeManager(panel, runId => {
        app.shell.activateById(sidebar.id);
        void sidebar.openRun(runId);
      });
      badges.set(panel, manager);
      panel.disposed.connect(() => {
        manager.dispose();
        badges.delete(panel);
      });
    });

    // keep a reference: the matcher listens to NotebookActions for the app's lifetime
    const matcher = new RunMatcher(cell => {
      void sidebar.refresh();
      for (const manager of badges.values()) {
        if (manager.panel.content.widgets.includes(cell)) {
          manager.update();
        }
      }
    });
    void matcher;

    app.commands.addCommand(CommandIDs.toggleTrack, {
      label: args => (args.isPalette ? 'nbops: Toggle %%track on the Active Cell' : 'Toggle %%track'),
      caption: 'Add or remove %%track: nbops records a run each time the cell executes',
      icon: args => (args.isPalette ? undefined : nbopsIcon),
      isEnabled: () => tracker.activeCell?.model.type === 'code',
      isToggled: () => {
        const cell = tracker.activeCell;
        return !!cell && cell.model.type === 'code' && isTracked(cell.model.sharedModel.getSource());
      },
      execute: () => {
        const cell = tracker.activeCell;
        const panel = tracker.currentWidget;
        if (!cell || cell.model.type !== 'code') {
          return;
        }
        const tracked = toggleTrack(cell.model);
        if (tracked) {
          // %%track needs the extension in the kernel; loading it twice is harmless
          void panel?.sessionContext.session?.kernel?.requestExecute({
            code: '%load_ext nbops',
            silent: true,
            store_history: false
          }).done.catch(() => undefined);
        }
        badges.get(panel!)?.update();
        app.commands.notifyCommandChanged(CommandIDs.toggleTrack);
      }
    });

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'nbops: Show Runs and Models',
      execute: () => app.shell.activateById(sidebar.id)
    });

    app.commands.addCommand(CommandIDs.refresh, {
      label: 'nbops: Refresh Runs and Models',
      execute: () => sidebar.refresh()
    });

    tracker.activeCellChanged.connect(() => app.commands.notifyCommandChanged(CommandIDs.toggleTrack));

    app.contextMenu.addItem({
      command: CommandIDs.toggleTrack,
      selector: '.jp-Notebook .jp-CodeCell',
      rank: 40
    });

    if (palette) {
      for (const command of Object.values(CommandIDs)) {
        palette.addItem({ command, category: 'nbops', args: { isPalette: true } });
      }
    }
    // loading the settings applies the keyboard shortcut and the cell toolbar button
    void settings?.load(PLUGIN_ID).catch(reason => {
      console.warn('nbops: could not load settings', reason);
    });
  }
};

export default plugin;
